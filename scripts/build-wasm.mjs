// Builds the WebAssembly kernels from the AssemblyScript sources in asm/ with the pinned dev dependency:
// kernels.wasm (SIMD) and kernels-relaxed.wasm (SIMD + relaxed-SIMD fused multiply-add).
// Writes them to dist/src/backends/wasm/ (where the compiled backend loads them) and src/backends/wasm/
// (the committed copies, a fallback when dist/ was built without this script).
// Usage: node scripts/build-wasm.mjs [--check]   --check: fail if the committed copies are out of date.
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

// NOTE: the memory is imported and shared so worker threads can run kernels on the same buffers;
// the JavaScript side creates it (src/backends/wasm/heap.ts) with its own maximum.
const COMMON = [
  'asm/index.ts', '-O3', '--noAssert', '--runtime', 'stub', '--use', 'abort=',
  '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536',
];
const VARIANTS = [
  { file: 'kernels.wasm', enable: 'simd,threads' },
  { file: 'kernels-relaxed.wasm', enable: 'simd,threads,relaxed-simd' },
];

/** Compile one variant in memory and return its bytes. */
async function compile(enable) {
  const asc = (await import('assemblyscript/asc')).default;
  let binary;
  const stderr = [];
  const { error } = await asc.main([...COMMON, '--enable', enable, '--outFile', 'out.wasm'], {
    readFile: (name, baseDir) => {
      const path = join(baseDir, name);
      return existsSync(path) ? readFileSync(path, 'utf8') : null;
    },
    writeFile: (name, contents) => {
      if (name.endsWith('.wasm')) binary = contents;
    },
    listFiles: () => [],
    stdout: { write: () => true },
    stderr: { write: (s) => { stderr.push(String(s)); return true; } },
    baseDir: root,
  });
  if (error) throw new Error(`asc failed for ${enable}: ${error.message}\n${stderr.join('')}`);
  if (!binary) throw new Error(`asc produced no binary for ${enable}`);
  return Buffer.from(binary);
}

/** Write a file atomically (temp file, then rename). */
function writeAtomic(path, bytes) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

let stale = [];
for (const v of VARIANTS) {
  const bytes = await compile(v.enable);
  const committed = join(root, 'src/backends/wasm', v.file);
  if (check) {
    if (!existsSync(committed) || !readFileSync(committed).equals(bytes)) stale.push(committed);
    continue;
  }
  writeAtomic(join(root, 'dist/src/backends/wasm', v.file), bytes);
  writeAtomic(committed, bytes);
  console.log(`built ${v.file} (${bytes.length} bytes)`);
}
if (stale.length > 0) {
  console.error(`out of date (run node scripts/build-wasm.mjs): ${stale.join(', ')}`);
  process.exit(1);
}
