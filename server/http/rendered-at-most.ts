/**
 * At most `perSecond` renderings a second of an answer that is costly to produce and the same
 * for everyone (the /metrics text; the cache stats, three Redis INFO calls each): past that,
 * callers in the same second share the last rendering. One caller after another, as a scraper
 * or a person reads, always gets a fresh one.
 */
export function renderedAtMost<T>(perSecond: number, render: () => Promise<T>): () => Promise<T> {
  let second = -1;
  let rendered = 0;
  let last: Promise<T> | null = null;
  return () => {
    const now = Math.floor(performance.now() / 1000);
    if (now !== second) {
      second = now;
      rendered = 0;
    }
    if (rendered++ < perSecond || !last) {
      last = render();
    }
    return last;
  };
}
