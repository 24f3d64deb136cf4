// A worker thread beside a SQLite store in synchronous=NORMAL mode: once a period it checkpoints the WAL, which syncs
// it to disk first, so the event loop never waits on an fsync and a commit reaches the disk within one period.
// workerData: { path, everyMs }. The message 'stop' checkpoints one last time and ends the thread.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { path, everyMs } = workerData as { path: string; everyMs: number };
const db = new Database(path);
db.pragma('busy_timeout = 1000');

function checkpoint(): void {
  try {
    // NOTE: PASSIVE never blocks the server's writes; what it cannot copy now it copies next time.
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or closing: the next period tries again.
  }
}

const timer = setInterval(checkpoint, everyMs);
parentPort!.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort!.close();
});
parentPort!.postMessage('ready');
