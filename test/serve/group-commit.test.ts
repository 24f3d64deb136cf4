// Group commit on its own, over a write the test answers by hand: records of one turn go in one batch, up to
// `concurrency` batches are in flight at once, what arrives while all are busy goes in the next batch, a bad record
// fails alone, and idle() waits for everything handed in.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit } from '../../src/serve/group-commit.js';

interface Write {
  items: string[];
  resolve: () => void;
  reject: (e: Error) => void;
}

function writer(): { writes: Write[]; write: (items: string[]) => Promise<void> } {
  const writes: Write[] = [];
  return { writes, write: (items) => new Promise<void>((resolve, reject) => writes.push({ items, resolve, reject })) };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('serve: group commit', () => {
  it('one batch per turn, up to `concurrency` in flight, the rest in the next batch', async () => {
    const w = writer();
    const gc = new GroupCommit(w.write, 256, 2);
    const done: string[] = [];
    const add = (x: string) => gc.add(x).then(() => done.push(x));
    const a = [add('a1'), add('a2')];
    await turn();
    assert.deepEqual(w.writes.map((x) => x.items), [['a1', 'a2']], 'the records of one turn: one batch');
    const b = [add('b1')];
    await turn();
    assert.deepEqual(w.writes.map((x) => x.items), [['a1', 'a2'], ['b1']], 'a second batch while the first is in flight');
    const c = [add('c1'), add('c2')];
    await turn();
    assert.equal(w.writes.length, 2, 'both connections busy: c waits');
    w.writes[1].resolve();
    await Promise.all(b);
    assert.deepEqual(done, ['b1'], 'each add resolves when its own batch commits');
    await turn();
    assert.deepEqual(w.writes[2].items, ['c1', 'c2'], 'what waited goes as soon as a write returns');
    w.writes[0].resolve();
    w.writes[2].resolve();
    await Promise.all([...a, ...c]);
    assert.deepEqual(done.sort(), ['a1', 'a2', 'b1', 'c1', 'c2']);
    await gc.idle();
  });

  it('with concurrency 1, what arrives during a write waits for it', async () => {
    const w = writer();
    const gc = new GroupCommit(w.write);
    const a = gc.add('a');
    await turn();
    const b = gc.add('b');
    await turn();
    assert.equal(w.writes.length, 1);
    w.writes[0].resolve();
    await a;
    await turn();
    assert.deepEqual(w.writes[1].items, ['b']);
    w.writes[1].resolve();
    await b;
  });

  it('a failed batch is written again one record at a time, and only the bad record fails', async () => {
    const gc = new GroupCommit<string>(async (items) => {
      if (items.includes('bad')) throw new Error('bad record');
    }, 256, 2);
    const results = await Promise.allSettled(['x', 'bad', 'y'].map((x) => gc.add(x)));
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  });

  it('idle() waits for every record handed in, across batches in flight', async () => {
    const w = writer();
    const gc = new GroupCommit(w.write, 256, 2);
    void gc.add('a');
    await turn();
    void gc.add('b');
    let idle = false;
    const waiting = gc.idle().then(() => {
      idle = true;
    });
    await turn();
    w.writes[0].resolve();
    await turn();
    assert.equal(idle, false, 'b is still in flight');
    w.writes[1].resolve();
    await waiting;
    assert.equal(idle, true);
  });
});
