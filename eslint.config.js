// Lint rules for ajar. The import arrows of STYLE.md are enforced here:
// tensor <- backends; tensor <- nn <- models <- (data, train, eval, generate) <- (serve, release, plan, bench) <- dashboard <- cli.
import tseslint from 'typescript-eslint';

// For each layer under src/, the layers it must not import from.
const layers = {
  tensor: ['backends', 'nn', 'io', 'models', 'data', 'train', 'eval', 'generate', 'serve', 'release', 'plan', 'bench', 'cli', 'dashboard'],
  backends: ['nn', 'io', 'models', 'data', 'train', 'eval', 'generate', 'serve', 'release', 'plan', 'bench', 'cli', 'dashboard'],
  nn: ['backends', 'io', 'models', 'data', 'train', 'eval', 'generate', 'serve', 'release', 'plan', 'bench', 'cli', 'dashboard'],
  io: ['backends', 'models', 'data', 'train', 'eval', 'generate', 'serve', 'release', 'plan', 'bench', 'cli', 'dashboard'],
  models: ['backends', 'data', 'train', 'eval', 'generate', 'serve', 'release', 'plan', 'bench', 'cli', 'dashboard'],
  data: ['backends', 'train', 'eval', 'generate', 'serve', 'release', 'plan', 'bench', 'cli', 'dashboard'],
  // NOTE: train may use eval's metrics (training evaluates as it goes); eval never imports train.
  train: ['backends', 'generate', 'serve', 'release', 'plan', 'bench', 'cli', 'dashboard'],
  eval: ['backends', 'train', 'generate', 'serve', 'release', 'plan', 'bench', 'cli', 'dashboard'],
  generate: ['backends', 'train', 'eval', 'serve', 'release', 'plan', 'bench', 'cli', 'dashboard'],
  bench: ['serve', 'release', 'plan', 'cli', 'dashboard'],
  serve: ['release', 'plan', 'cli', 'bench', 'dashboard'],
  release: ['serve', 'plan', 'cli', 'bench', 'dashboard'],
  plan: ['serve', 'release', 'cli', 'bench', 'dashboard'],
  // The dashboard's data (runs, model folders, the plan) reads serve, release and plan; only cli imports it.
  dashboard: ['cli', 'bench'],
  cli: [],
};

const arrowRules = Object.entries(layers).map(([layer, forbidden]) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: forbidden.length === 0 ? [] : [{
        group: forbidden.flatMap((f) => [`../${f}/*`, `../../${f}/*`, `../../../${f}/*`, `../${f}`, `../../${f}`]),
        message: `src/${layer} may not import this layer (STYLE.md: dependencies point one way).`,
      }],
    }],
  },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'web/**', '**/*.js', '**/*.cjs'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-console': 'off',
      'eqeqeq': ['error', 'smart'],
    },
  },
  ...arrowRules,
);
