import { DataSourcePlugin } from '@grafana/data';

import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { DataSource } from './datasource';
import { RuleperfOptions, RuleperfQuery, RuleperfSecureOptions } from './types';

export const plugin = new DataSourcePlugin<DataSource, RuleperfQuery, RuleperfOptions, RuleperfSecureOptions>(
  DataSource
)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
