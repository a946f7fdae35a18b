import readline from 'node:readline';
import { TfvlmError } from '../errors.ts';
import type { Vlm, GenerateCallOptions } from '../engine.ts';
import type { Command } from './command.ts';
import { GENERATION_HELP, GENERATION_OPTIONS, generationOptions, loadOptions, timingsLine } from './generation-flags.ts';
import { MODEL_OPTION_HELP, modelSpec } from './model-option.ts';
import { requestFromArgs } from './request.ts';
import { streamToStdout, withModel } from './run-generation.ts';

export const chatCommand: Command = {
  name: 'chat',
  summary: 'answer a chat conversation (--messages), or chat interactively',
  usage: `Usage: tfvlm chat --messages M.json [--model DIR|ID] [generation options]
       tfvlm chat [--system TEXT] [--model DIR|ID]         (interactive)

With --messages: answers the conversation in M.json (system/user/assistant messages; images as
{"type":"image","image":"photo.jpg"}, videos as {"type":"video","video":"clip.mp4"} (a video file, animated
GIF or folder of frames; SmolVLM-family models), paths relative to M.json) and prints the reply.
Without it: an interactive chat that keeps the KV cache between turns. Type a message and press
Enter; "/image PATH" or "/video PATH" attaches an image or a video to your next message, "/reset"
starts over, "/exit" quits. Ctrl-C stops a reply (the turn is not kept) or, at the prompt, quits; a
turn that fails (a missing image) is reported and not kept. Lines can also be piped in on stdin.
  --system TEXT       a system message for the interactive chat
  ${MODEL_OPTION_HELP}

${GENERATION_HELP}`,
  options: { model: { type: 'string' }, messages: { type: 'string' }, system: { type: 'string' }, ...GENERATION_OPTIONS },
  async run(args) {
    const options = generationOptions(args, 'chat');
    const flags = args.values as { json?: boolean; quiet?: boolean };
    if (typeof args.values.messages === 'string') {
      const request = requestFromArgs(args, 'chat');
      return withModel(modelSpec(args), (vlm) => streamToStdout(vlm, request, options, flags), loadOptions(args, 'chat'));
    }
    if (flags.json) throw new TfvlmError('tfvlm chat: --json needs --messages');
    await withModel(modelSpec(args), (vlm) => interactive(vlm, args.values.system as string | undefined, options, !!flags.quiet), loadOptions(args, 'chat'));
    return 0;
  },
};

async function interactive(vlm: Vlm, system: string | undefined, options: GenerateCallOptions, quiet: boolean): Promise<void> {
  const tty = process.stdin.isTTY === true;
  const rl = readline.createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty });
  const chat = vlm.conversation({ system, baseDir: process.cwd() });
  let media: ({ type: 'image'; image: string } | { type: 'video'; video: string })[] = [];
  // Ctrl-C during a reply stops it (the turn is not kept); at the prompt it quits.
  let reply: AbortController | undefined;
  const onSigint = () => (reply && !reply.signal.aborted ? reply.abort() : rl.close());
  rl.on('SIGINT', onSigint);
  process.on('SIGINT', onSigint);
  const prompt = () => tty && rl.prompt();
  if (tty) {
    process.stdout.write(`tfvlm chat — ${vlm.dir}\n/image PATH or /video PATH attaches an image or a video, /reset starts over, /exit quits; Ctrl-C stops a reply.\n`);
    rl.setPrompt('you> ');
  }
  prompt();
  try {
    for await (const line of rl) {
      const text = line.trim();
      if (text === '/exit' || text === '/quit') break;
      if (text === '/reset') {
        chat.clear();
        media = [];
      } else if (text.startsWith('/image ')) {
        media.push({ type: 'image', image: text.slice('/image '.length).trim() });
      } else if (text.startsWith('/video ')) {
        media.push({ type: 'video', video: text.slice('/video '.length).trim() });
      } else if (text) {
        const content = [...media, { type: 'text', text }];
        media = [];
        if (tty) process.stdout.write('assistant> ');
        reply = new AbortController();
        try {
          const it = chat.send(content, { ...options, signal: reply.signal });
          for (;;) {
            const r = await it.next();
            if (r.done) {
              process.stdout.write('\n');
              if (r.value.stopReason === 'aborted') process.stderr.write('[stopped: this turn is not kept]\n');
              else if (!quiet) process.stderr.write(`[${timingsLine(r.value, vlm.loadMs)} · prefilled ${chat.lastPrefillTokens} new tokens]\n`);
              break;
            }
            process.stdout.write(r.value);
          }
        } catch (e) {
          // A failed turn leaves the conversation as it was, so the chat goes on.
          if (!(e instanceof TfvlmError)) throw e;
          process.stdout.write('\n');
          process.stderr.write(`error: ${e.message} (this turn is not kept)\n`);
        } finally {
          reply = undefined;
        }
      }
      prompt();
    }
  } finally {
    process.off('SIGINT', onSigint);
    rl.close();
    chat.dispose();
  }
}
