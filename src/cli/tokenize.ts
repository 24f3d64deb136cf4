// ajar tokenize: the token ids of a text under a model folder's tokenizer.
import { loadTokenizer } from '../io/tokenizer/index.js';
import { AjarError } from '../tensor/errors.js';
import { bool, parseFlags, requireStr, str } from './args.js';
import { printJson, readTextFile } from './common.js';
import { modelDirArg } from './pull.js';

const HELP = `usage: ajar tokenize --model DIR|ORG/NAME[@REV] (--text S | --file F) [--json]

Prints the token ids of the text (space separated), or {"ids":[...]} with --json.`;

export async function tokenizeCommand(argv: string[]): Promise<number> {
  const p = parseFlags('tokenize', argv, {
    model: { type: 'string' }, text: { type: 'string' }, file: { type: 'string' },
    json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  });
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  const dir = await modelDirArg(requireStr('tokenize', p, 'model'), 'tokenize');
  const text = str(p, 'text');
  const file = str(p, 'file');
  if ((text === undefined) === (file === undefined)) {
    throw new AjarError('bad_flag', 'ajar tokenize: give exactly one of --text or --file');
  }
  const input = text ?? readTextFile(file!, 'input file');
  const tok = loadTokenizer(dir);
  const ids = tok.encode(input);
  if (tok.addBos && tok.bosTokenId !== null) ids.unshift(tok.bosTokenId);
  if (tok.addEos === true && tok.eosTokenId !== null) ids.push(tok.eosTokenId);
  if (bool(p, 'json')) printJson({ ids });
  else console.log(ids.join(' '));
  return 0;
}
