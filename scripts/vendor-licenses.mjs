// Writes assets/licenses/<SPDX-ID>.txt, the official texts of the licences ajar bundles for `ajar release open`,
// from the SPDX licence list as packaged by spdx-license-list (a devDependency; the list's data is CC0).
// Run `node scripts/vendor-licenses.mjs` after changing BUNDLED here and in src/release/licenses.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const BUNDLED = [
  'Apache-2.0', 'MIT', 'BSD-2-Clause', 'BSD-3-Clause', 'ISC', 'Zlib', 'BSL-1.0', 'Unlicense', 'CC0-1.0',
  'CC-BY-4.0', 'CC-BY-SA-4.0', 'CC-BY-NC-4.0', 'CC-BY-NC-SA-4.0', 'CC-BY-ND-4.0', 'CC-BY-NC-ND-4.0',
  'GPL-2.0-only', 'GPL-3.0-only', 'LGPL-2.1-only', 'LGPL-3.0-only', 'AGPL-3.0-only', 'MPL-2.0', 'EPL-2.0',
];

const dir = new URL('../assets/licenses/', import.meta.url);
mkdirSync(dir, { recursive: true });
for (const id of BUNDLED) {
  const { licenseText } = require(`spdx-license-list/licenses/${id}.json`);
  const text = licenseText.endsWith('\n') ? licenseText : `${licenseText}\n`;
  writeFileSync(new URL(`${id}.txt`, dir), text);
  console.log(`${id}.txt ${text.length} bytes`);
}
