// Benchmarks: workloads shared by `ajar bench` and the side-by-side runner in bench/.
export * from './workloads.js';
