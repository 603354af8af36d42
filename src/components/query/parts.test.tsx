// The query editor's parts on their own: each renders a few Grafana Selects, not the whole editor.
import { screen } from '@testing-library/react';

import { choose, renderPart, UI_TEST_TIMEOUT_MS, user } from '../../__fixtures__/ui';
import { KindFields } from './KindFields';
import { RowFields } from './RowFields';
import { SeriesFields } from './SeriesFields';

jest.setTimeout(UI_TEST_TIMEOUT_MS);

describe('KindFields', () => {
  it('changes the query type and the granularity', async () => {
    const { last } = renderPart(KindFields, { refId: 'A', kind: 'stats' });
    await choose('Query type', 'Time series');
    expect(last()).toEqual({ refId: 'A', kind: 'timeseries' });
    await choose('Granularity', 'Daily');
    expect(last()).toEqual({ refId: 'A', kind: 'timeseries', granularity: 'daily' });
  });
});

describe('SeriesFields', () => {
  it('sets metrics and group-by for a time series', async () => {
    const { last } = renderPart(SeriesFields, { refId: 'A', kind: 'timeseries' });
    expect(screen.getByText('p50 time, p95 time, p99 time (default)')).toBeInTheDocument();
    await choose('Metrics', 'p99 time (ms)');
    await choose('Metrics', 'Error rate');
    expect(last().metrics).toEqual(['p99ExecutionTimeMs', 'errorRate']);
    await choose('Group by', 'Rule');
    expect(last().groupBy).toBe('ruleId');
  });

  it("shows an error breakdown's default group-by, and no metrics", () => {
    renderPart(SeriesFields, { refId: 'A', kind: 'errorBreakdown' });
    expect(screen.getByText('Category (default)')).toBeInTheDocument();
    expect(screen.queryByLabelText('Metrics')).not.toBeInTheDocument();
  });

  it('renders nothing for kinds without series options', () => {
    renderPart(SeriesFields, { refId: 'A', kind: 'topRules' });
    expect(screen.queryByLabelText('Group by')).not.toBeInTheDocument();
  });
});

describe('RowFields', () => {
  it('rejects a limit outside 1..1000 and sends a valid one', async () => {
    const { last, changes } = renderPart(RowFields, { refId: 'A', kind: 'topRules' });
    const limit = screen.getByLabelText('Limit');
    expect(limit).toHaveAttribute('placeholder', '10');
    expect(screen.getByText('p95 time, slowest first')).toBeInTheDocument();
    await user.type(limit, '5000');
    await user.tab();
    expect(screen.getByText('Enter a whole number from 1 to 1000.')).toBeInTheDocument();
    expect(changes).toHaveLength(0);

    await user.clear(limit);
    await user.type(limit, '25{enter}');
    expect(screen.queryByText(/Enter a whole number/)).not.toBeInTheDocument();
    expect(last().limit).toBe(25);

    // Emptying the field goes back to the service's default.
    await user.clear(limit);
    await user.tab();
    expect(last().limit).toBeUndefined();
  });

  it('sets the sort order of top rules', async () => {
    const { last } = renderPart(RowFields, { refId: 'A', kind: 'topRules' });
    await choose('Sort by', 'Error rate, highest first');
    expect(last().sortBy).toBe('errorRate');
  });

  it('offers a limit but no sort for an error breakdown', () => {
    renderPart(RowFields, { refId: 'A', kind: 'errorBreakdown' });
    expect(screen.getByLabelText('Limit')).toBeInTheDocument();
    expect(screen.queryByLabelText('Sort by')).not.toBeInTheDocument();
  });
});
