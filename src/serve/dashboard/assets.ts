// The dashboard's static files: the package's web/ folder (plain ES modules and CSS, no build step) and uPlot's
// files from its package, read once and kept in memory. Only files that exist there are served, by exact name.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** web/ at the package root: from dist/src/serve/dashboard/ (compiled) or src/serve/dashboard/ (sources). */
export function webDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const up = here.includes(`${join('dist', 'src')}`) ? 4 : 3;
  return join(here, ...Array<string>(up).fill('..'), 'web');
}

export interface StaticFile {
  type: string;
  bytes: Buffer;
}

export class StaticFiles {
  private files: Map<string, StaticFile> | undefined;

  constructor(private readonly dir: string = webDir()) {}

  /** The file at a path under /ui/static/, or undefined. */
  get(path: string): StaticFile | undefined {
    this.files ??= this.load();
    return this.files.get(path);
  }

  private load(): Map<string, StaticFile> {
    const out = new Map<string, StaticFile>();
    const walk = (dir: string, prefix: string): void => {
      for (const name of readdirSync(dir)) {
        const full = join(dir, name);
        const st = statSync(full);
        if (st.isDirectory()) walk(full, `${prefix}${name}/`);
        else if (st.isFile() && TYPES[extname(name)] !== undefined) {
          out.set(`${prefix}${name}`, { type: TYPES[extname(name)], bytes: readFileSync(full) });
        }
      }
    };
    walk(this.dir, '');
    // NOTE: uPlot ships in the package (a dependency), so the dashboard needs no network and no build.
    const uplot = dirname(createRequire(import.meta.url).resolve('uplot'));
    for (const name of ['uPlot.esm.js', 'uPlot.min.css']) {
      out.set(`vendor/${name}`, { type: TYPES[extname(name)], bytes: readFileSync(join(uplot, name)) });
    }
    return out;
  }
}
