/**
 * Helpers for tests that render Grafana UI. Selects are slow to open in jsdom, and slower
 * on a loaded machine, so waits are generous (they end as soon as the thing appears) and
 * userEvent runs without artificial delays between keystrokes.
 */
import React, { useState } from 'react';
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';

import type { RuleperfQuery } from '../types';

/** How long a test that renders Grafana UI may take: many Select openings on a busy 2-core machine. */
export const UI_TEST_TIMEOUT_MS = 60_000;
/** How long to wait for one thing to appear (a menu, an option list) before failing. */
export const FIND_TIMEOUT_MS = 10_000;

export const user = userEvent.setup({ delay: null });

/** Opens a Grafana Select by its label and clicks the option with the given text. */
export async function choose(label: string | RegExp, option: string | RegExp) {
  await user.click(screen.getByLabelText(label));
  const menu = await screen.findByLabelText('Select options menu', {}, { timeout: FIND_TIMEOUT_MS });
  await user.click(within(menu).getByText(option));
}

interface PartProps {
  query: RuleperfQuery;
  onChange: (patch: Partial<RuleperfQuery>) => void;
}

/** Renders one part of the query editor the way QueryEditor does: each change is merged into the query. */
export function renderPart(Part: (props: PartProps) => React.ReactElement | null, initial: RuleperfQuery) {
  const changes: RuleperfQuery[] = [];
  function Host() {
    const [query, setQuery] = useState(initial);
    return (
      <Part
        query={query}
        onChange={(patch) => {
          const next = { ...query, ...patch };
          changes.push(next);
          setQuery(next);
        }}
      />
    );
  }
  render(<Host />);
  return { changes, last: () => changes[changes.length - 1] };
}
