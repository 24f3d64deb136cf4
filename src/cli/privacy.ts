// ajar privacy: the privacy accountant on its own: epsilon of a DP-SGD run, or the noise a target epsilon needs.
import { AjarError } from '../tensor/errors.js';
import { checkMechanism, epsilonOf, noiseMultiplierFor } from '../train/accountant.js';
import { bool, num, parseFlags } from './args.js';
import { printJson } from './common.js';

const HELP = `usage: ajar privacy epsilon --sample-rate Q --noise-multiplier S --steps N --delta D [--json]
       ajar privacy noise --sample-rate Q --target-epsilon E --steps N --delta D [--json]

epsilon: the (epsilon, delta) guarantee of N steps of DP-SGD with Poisson sampling at rate Q (batch size / examples)
and Gaussian noise of S times the clipping norm, by the RDP accountant (Opacus's: orders 1.1 ... 10.9 and 12 ... 63,
Balle et al. 2020's conversion). Prints epsilon and the RDP order that gives it; --json prints {"epsilon", "order"}.
noise: the smallest noise multiplier (to Opacus's tolerance, epsilon within 0.01 below the target) that keeps
epsilon at most E; --json prints {"noise_multiplier", "epsilon", "order"}.`;

const FLAGS = {
  'sample-rate': { type: 'string' }, 'noise-multiplier': { type: 'string' }, 'target-epsilon': { type: 'string' },
  steps: { type: 'string' }, delta: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
} as const;

const FLAG_OF = { sampleRate: '--sample-rate', noiseMultiplier: '--noise-multiplier', steps: '--steps', delta: '--delta' };

export async function privacyCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    console.log(HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'epsilon' && sub !== 'noise') {
    throw new AjarError('bad_flag', `ajar privacy: unknown subcommand '${sub}'; use 'epsilon' or 'noise' (see 'ajar privacy --help')`);
  }
  const p = parseFlags('privacy', rest, FLAGS);
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  const need = (name: string): number => {
    const v = num('privacy', p, name);
    if (v === undefined) throw new AjarError('bad_flag', `ajar privacy ${sub}: --${name} is required (see 'ajar privacy --help')`);
    return v;
  };
  const sampleRate = need('sample-rate');
  const steps = need('steps');
  const delta = need('delta');
  const noiseMultiplier = sub === 'epsilon' ? need('noise-multiplier') : 1;
  checkMechanism({ sampleRate, noiseMultiplier, steps, delta }, (f) => `ajar privacy ${sub}: ${FLAG_OF[f]}`);
  if (sub === 'epsilon') {
    const r = epsilonOf({ sampleRate, noiseMultiplier, steps, delta });
    if (bool(p, 'json')) printJson({ epsilon: r.epsilon, order: r.order });
    else console.log(`epsilon ${r.epsilon} at delta ${delta} (RDP order ${r.order})`);
    return 0;
  }
  const target = need('target-epsilon');
  if (!(target > 0)) throw new AjarError('bad_flag', `ajar privacy noise: --target-epsilon must be above 0, got ${target}`);
  const sigma = noiseMultiplierFor(target, delta, sampleRate, steps);
  const r = epsilonOf({ sampleRate, noiseMultiplier: sigma, steps, delta });
  if (bool(p, 'json')) printJson({ noise_multiplier: sigma, epsilon: r.epsilon, order: r.order });
  else console.log(`noise multiplier ${sigma}: epsilon ${r.epsilon} at delta ${delta} (RDP order ${r.order})`);
  return 0;
}
