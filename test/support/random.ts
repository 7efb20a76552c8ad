// A small seeded PRNG (mulberry32): every stress and fuzz run prints its seed and can be replayed.
export interface Rng {
  seed: number;
  next: () => number; // [0, 1)
  int: (lo: number, hi: number) => number; // inclusive
  pick: <T>(xs: readonly T[]) => T;
  chance: (p: number) => boolean;
}

export function makeRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    seed,
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}

// The seed a run uses: the variable's value when set (to replay a run), else a fixed seed in CI
// (the same run every time, so a red CI is reproducible), else a fresh one (so local runs keep
// exploring). Every caller prints it.
export const CI_SEED = 20261201;

export function seedFromEnv(name: string): number {
  const v = process.env[name];
  if (v && /^\d+$/.test(v)) return Number(v);
  return process.env.CI ? CI_SEED : Math.floor(Math.random() * 2 ** 31);
}
