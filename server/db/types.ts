/** The slice of pg's Pool/Client the data layer needs, so either can be passed. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: any[]; rowCount: number | null }>;
}
