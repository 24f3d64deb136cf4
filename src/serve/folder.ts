// A ModelSpec from a Hugging Face model folder: weights and tokenizer through models/, the chat template from
// chat_template.jinja or tokenizer_config.json. The id defaults to the folder's name.
import { basename, resolve } from 'node:path';
import { loadCausalLM } from '../models/index.js';
import type { ModelSpec } from './app.js';
import { loadChatTemplate } from './chat.js';

export function modelSpecFromFolder(dir: string, id?: string): ModelSpec {
  const { model, tokenizer } = loadCausalLM(dir, { int8: true });
  return { id: id ?? basename(resolve(dir)), model, tokenizer, chatTemplate: loadChatTemplate(dir) };
}
