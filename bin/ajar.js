#!/usr/bin/env node
// ajar's command-line entry: everything lives in dist/src/cli (built by `npm ci` through the prepare script).
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
