// `--license` takes any SPDX licence id: the bundled texts are SPDX's official ones (as spdx-license-list packages
// them), the Hub's ids go on the card, and a licence whose text is not bundled is named and linked at spdx.org.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { LICENSES, normalizeLicenseId, resolveLicense } from '../../src/release/licenses.js';

const require = createRequire(import.meta.url);
const spdxText = (id: string): string => (require(`spdx-license-list/licenses/${id}.json`) as { licenseText: string }).licenseText;
const spdxIds = require('spdx-license-ids') as string[];
const YEAR = { year: 2026 };

describe('release: licences', () => {
  it('every bundled text is the SPDX list\'s official text', () => {
    const bundled = Object.entries(LICENSES).filter(([, info]) => info.spdx !== undefined);
    assert.ok(bundled.length >= 20, `${bundled.length} bundled`);
    for (const [id, info] of bundled) {
      const r = resolveLicense(id, { ...YEAR, author: 'Example Org' });
      const expected = id === 'mit'
        ? spdxText('MIT').replace('<year> <copyright holders>', '2026 Example Org')
        : id === 'apache-2.0' ? spdxText('Apache-2.0').replace('[yyyy] [name of copyright owner]', '2026 Example Org') : spdxText(info.spdx!);
      assert.equal(r.text.trimEnd(), expected.trimEnd(), id);
      assert.equal(r.metadata.license, info.hub, id);
      assert.equal(r.link, `https://spdx.org/licenses/${info.spdx}.html`);
    }
  });

  it('cc-by-sa-4.0 (refused before) carries its text and the Hub id', () => {
    const r = resolveLicense('CC-BY-SA-4.0', YEAR);
    assert.deepEqual(r.metadata, { license: 'cc-by-sa-4.0' });
    assert.equal(r.text.trimEnd(), spdxText('CC-BY-SA-4.0').trimEnd());
  });

  it('accepts every id of the SPDX licence list', () => {
    assert.ok(spdxIds.length > 600);
    for (const id of spdxIds) {
      const r = resolveLicense(id, { ...YEAR, author: 'Example Org' });
      assert.ok(r.text.includes(id) || r.link === `https://spdx.org/licenses/${id}.html`, id);
    }
  });

  it('an SPDX id without a bundled text: named and linked; on the card as the Hub id, or as other with its name', () => {
    const wtfpl = resolveLicense('WTFPL', YEAR);
    assert.deepEqual(wtfpl.metadata, { license: 'wtfpl' });
    assert.match(wtfpl.text, /^WTFPL\n\n.*Its official text: https:\/\/spdx\.org\/licenses\/WTFPL\.html\n$/s);
    assert.match(wtfpl.source, /not bundled with ajar.*--license-file/);
    const beer = resolveLicense('beerware', YEAR);
    assert.deepEqual(beer.metadata, { license: 'other', license_name: 'beerware', license_link: 'https://spdx.org/licenses/Beerware.html' });
    assert.equal(normalizeLicenseId('Beerware'), 'beerware');
  });
});
