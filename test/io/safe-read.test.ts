// readRegularFile's rules in-process: which links stay inside a folder (a hub snapshot's reach its repo's blobs),
// which files are regular, and the size limit counted in bytes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readRegularFile, readRegularJson, sha256OfRegularFile, trustedRoot } from '../../src/io/safe-read.js';
import { AjarError } from '../../src/tensor/errors.js';

const POSIX = process.platform !== 'win32';

function refused(f: () => unknown, message: RegExp): void {
  assert.throws(f, (e: unknown) => e instanceof AjarError && e.code === 'bad_config' && message.test(e.message) && !e.message.includes('\n'));
}

describe('safe-read', { skip: POSIX ? false : 'symlinks and FIFOs need POSIX' }, () => {
  let root: string;
  let dir: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'ajar-safe-read-'));
    dir = join(root, 'model');
    mkdirSync(dir);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('a link to a sibling inside the folder reads; a name starting with ".." is not a way out', () => {
    writeFileSync(join(dir, '..odd.json'), '{"a": 1}');
    symlinkSync('..odd.json', join(dir, 'config.json'));
    assert.deepEqual(readRegularJson(join(dir, 'config.json'), { code: 'bad_config', kind: 'config', root: dir }), { a: 1 });
  });

  it('a link to ../other (a sibling folder whose name starts with the folder\'s) is outside', () => {
    mkdirSync(join(root, 'model-evil'));
    writeFileSync(join(root, 'model-evil', 'x.json'), '{}');
    symlinkSync(join('..', 'model-evil', 'x.json'), join(dir, 'evil.json'));
    refused(() => readRegularFile(join(dir, 'evil.json'), { code: 'bad_config', kind: 'config', root: dir }), /is a link to .*model-evil.*, outside /);
    // Without a root (a file the user named), the same link is read.
    assert.equal(readRegularFile(join(dir, 'evil.json'), { code: 'bad_config', kind: 'config' }).toString(), '{}');
  });

  it('a hub snapshot\'s root is its repo folder, so ../../blobs links read and links beyond it do not', () => {
    const repo = join(root, 'hub', 'models--org--name');
    const snap = join(repo, 'snapshots', 'c'.repeat(40));
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    mkdirSync(snap, { recursive: true });
    writeFileSync(join(repo, 'blobs', 'etag1'), '{"b": 2}');
    symlinkSync(join('..', '..', 'blobs', 'etag1'), join(snap, 'config.json'));
    assert.equal(trustedRoot(snap), repo);
    assert.equal(trustedRoot(dir), dir, 'an ordinary folder is its own root');
    assert.deepEqual(readRegularJson(join(snap, 'config.json'), { code: 'bad_config', kind: 'config', root: snap }), { b: 2 });
    writeFileSync(join(root, 'hub', 'loose'), '{}');
    symlinkSync(join('..', '..', '..', 'loose'), join(snap, 'loose.json'));
    refused(() => readRegularFile(join(snap, 'loose.json'), { code: 'bad_config', kind: 'config', root: snap }), /outside .*models--org--name;/);
  });

  it('limits count bytes: maxBytes is read, maxBytes + 1 is refused; FIFOs, folders and dangling links are refused', () => {
    writeFileSync(join(dir, 'ten.bin'), Buffer.alloc(10, 7));
    assert.equal(readRegularFile(join(dir, 'ten.bin'), { code: 'bad_config', kind: 'config', root: dir, maxBytes: 10 }).length, 10);
    refused(() => readRegularFile(join(dir, 'ten.bin'), { code: 'bad_config', kind: 'config', root: dir, maxBytes: 9 }),
      /ten\.bin is 10 bytes, over ajar's 9-byte limit for config files$/);
    // sha256sum of ten bytes 0x07: python3 -c "import hashlib; print(hashlib.sha256(b'\x07'*10).hexdigest())"
    assert.equal(sha256OfRegularFile(join(dir, 'ten.bin'), { code: 'bad_config', kind: 'weights', root: dir }),
      'bf52943413e4b2e64c1b18f831aae28a7c3e4c2792a99500c06bf6c5a933aab5');
    assert.equal(spawnSync('mkfifo', [join(dir, 'pipe')]).status, 0);
    refused(() => readRegularFile(join(dir, 'pipe'), { code: 'bad_config', kind: 'config', root: dir }), /pipe is a FIFO \(named pipe\), not a regular file$/);
    refused(() => readRegularFile(root, { code: 'bad_config', kind: 'config' }), /is a folder, not a regular file$/);
    symlinkSync('nowhere', join(dir, 'dangling'));
    refused(() => readRegularFile(join(dir, 'dangling'), { code: 'bad_config', kind: 'config', root: dir }), /dangling is a symbolic link to a file that does not exist$/);
  });
});

