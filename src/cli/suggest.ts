// "Did you mean": the closest known name to a mistyped command or flag, as git and cargo suggest them.
// NOTE: written here (20 lines) rather than a dependency: the distance is textbook and package.json is shared.

/** Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions, each substring edited once). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The known name closest to `input` within distance 2 (ties: the first in `known`), or undefined. */
export function closest(input: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const dist = editDistance(input, k);
    if (dist < bestD) {
      best = k;
      bestD = dist;
    }
  }
  return best;
}
