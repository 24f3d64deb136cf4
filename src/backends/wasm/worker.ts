// Entry point of a kernel worker thread: serves jobs from the pool's control block until told to quit.
import { workerData } from 'node:worker_threads';
import { serveJobs, type WorkerInit } from './pool.js';

serveJobs(workerData as WorkerInit);
