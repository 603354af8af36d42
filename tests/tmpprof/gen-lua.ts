import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dashboardWarmItems } from '../../server/warming/warmer';
import { dashboardRequests } from '../../testkit/load-model';
import { luaScript, type WrkShape } from '../../bench/lib/wrk';
const panels = dashboardWarmItems(join(__dirname, '..', '..', 'provisioning', 'dashboards'));
const requests = dashboardRequests(panels, Date.now(), {}).map((body) => {
  body.queries[0].refId = 'A';
  return body;
});
const shapes: WrkShape[] = requests.map((body) => {
  const { range, ...rest } = body;
  return { spanMs: Number(range.to) - Number(range.from), rest };
});
writeFileSync('/tmp/prof/dash.lua', luaScript(shapes, { path: '/api/v1/query' }));
