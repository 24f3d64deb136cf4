// Chat prompts: a model folder's Jinja chat template (chat_template.jinja, or tokenizer_config.json's
// chat_template) rendered with @huggingface/jinja, else a documented plain-text fallback for base models.
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { entryExists } from '../io/safe-read.js';
import { chatTemplateFromConfig, readJsonIfExists, readTextFile } from '../io/tokenizer/files.js';
import { AjarError } from '../tensor/errors.js';
import { ServeError } from './errors.js';

export interface ChatMessage {
  role: string;
  content: string;
  name?: string;
}

/** What a chat request becomes: prompt text, whether to prepend BOS, and stop strings the format implies. */
export interface ChatPrompt {
  text: string;
  addBos: boolean;
  stop: string[];
}

/**
 * The chat template of a model folder, or undefined when it has none. Looks at chat_template.jinja first (newer
 * transformers), then tokenizer_config.json's chat_template: a string, or a list of {name, template} (uses "default").
 */
export function loadChatTemplate(dir: string): string | undefined {
  const jinjaPath = join(dir, 'chat_template.jinja');
  if (entryExists(jinjaPath)) return readTextFile(jinjaPath);
  const configPath = join(dir, 'tokenizer_config.json');
  return chatTemplateFromConfig(readJsonIfExists(configPath), configPath);
}

/** The fallback's role labels; other roles are capitalised. */
const FALLBACK_LABELS: Record<string, string> = {
  system: 'System', developer: 'System', user: 'User', assistant: 'Assistant', tool: 'Tool',
};

/** Stops the fallback adds so a base model does not write the user's next turn. */
export const FALLBACK_STOPS = ['\nUser:', '\nSystem:'];

/**
 * The plain fallback, one line per message and an open assistant turn:
 *   System: <content>\nUser: <content>\nAssistant: <content>\n...Assistant:
 */
export function fallbackChatText(messages: readonly ChatMessage[]): string {
  const lines = messages.map((m) => `${FALLBACK_LABELS[m.role] ?? m.role.charAt(0).toUpperCase() + m.role.slice(1)}: ${m.content}`);
  return `${lines.join('\n')}\nAssistant:`;
}

/** A compiled chat format for one model. */
export class ChatFormat {
  private readonly template: Template | null;

  /**
   * source: the Jinja template text, or undefined for the fallback.
   * bos/eos: the special tokens' text, passed to the template as bos_token and eos_token.
   */
  constructor(readonly source: string | undefined, private readonly bos: string, private readonly eos: string,
    private readonly addBosForFallback: boolean) {
    try {
      this.template = source === undefined ? null : new Template(source);
    } catch (e) {
      throw new AjarError('bad_chat_template', `the chat template does not parse: ${(e as Error).message}`);
    }
  }

  get hasTemplate(): boolean {
    return this.template !== null;
  }

  render(messages: readonly ChatMessage[]): ChatPrompt {
    if (this.template === null) {
      return { text: fallbackChatText(messages), addBos: this.addBosForFallback, stop: [...FALLBACK_STOPS] };
    }
    let text: string;
    try {
      text = this.template.render({
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: true,
        bos_token: this.bos,
        eos_token: this.eos,
      });
    } catch (e) {
      // NOTE: templates reject bad conversations with raise_exception ("roles must alternate ..."): the client's fault.
      const msg = e instanceof Error ? e.message : String(e);
      throw new ServeError('invalid_messages', `the model's chat template rejected the messages: ${msg.slice(0, 300)}`,
        { param: 'messages' });
    }
    // NOTE: templates write the BOS token themselves when the model wants it (transformers' apply_chat_template
    // tokenizes without special tokens), so it is never prepended twice.
    return { text, addBos: false, stop: [] };
  }
}
