import { useState } from 'react';

import { LIMITS } from '../../contract';

/**
 * The limit input: while it is being typed (or is invalid) it shows the draft, otherwise
 * the query's value. `commit` checks the draft and hands a valid number (or undefined for
 * an empty field, meaning the service's default) to `onCommit` when it changed.
 */
export function useLimitField(value: number | undefined, onCommit: (limit: number | undefined) => void) {
  const [draft, setDraft] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const text = draft ?? (value !== undefined ? String(value) : '');

  const commit = () => {
    const trimmed = text.trim();
    if (trimmed === '') {
      setError(undefined);
      setDraft(undefined);
      if (value !== undefined) {
        onCommit(undefined);
      }
      return;
    }
    const n = Number(trimmed);
    if (!Number.isInteger(n) || n < 1 || n > LIMITS.maxTopRulesLimit) {
      setError(`Enter a whole number from 1 to ${LIMITS.maxTopRulesLimit}.`);
      return;
    }
    setError(undefined);
    setDraft(undefined);
    if (n !== value) {
      onCommit(n);
    }
  };

  return { text, error, setDraft, commit };
}
