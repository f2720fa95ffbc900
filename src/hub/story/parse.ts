// Reads story text (JSON or YAML) safely: bounded size, no custom or explicit tags, few aliases
// (an alias bomb expands exponentially), one document only. Then validates it.

import { open } from 'node:fs/promises';
import { extname } from 'node:path';

import { parseDocument, visit } from 'yaml';

import { errorMessage } from '../../internal/errors.ts';
import { StoryLoadError, StoryValidationError } from './errors.ts';
import type { Story } from './story.ts';
import { validateStory } from './validate.ts';

/** Largest story text accepted, in UTF-8 bytes. */
export const maxStoryBytes = 1024 * 1024;
/** Aliases a YAML story may use; enough to share policy blocks, too few for a bomb. */
export const maxYamlAliases = 50;

export type StoryFormat = 'json' | 'yaml';

export interface ParseStoryOptions {
  /** Defaults to JSON when the text starts with `{`, else YAML. */
  readonly format?: StoryFormat;
}

/** Parses and validates story text; throws StoryValidationError for anything wrong with it. */
export function parseStory(text: string, options: ParseStoryOptions = {}): Story {
  if (typeof text !== 'string') refuse(`story text must be a string, got ${typeof text}`);
  // A string's UTF-8 size is at least its length, so an obviously huge one is refused unmeasured.
  const bytes = text.length > maxStoryBytes ? text.length : Buffer.byteLength(text, 'utf8');
  if (bytes > maxStoryBytes)
    refuse(`story is ${bytes} bytes or more, larger than the limit of ${maxStoryBytes}`);
  const format = options.format ?? (text.trimStart().startsWith('{') ? 'json' : 'yaml');
  return validateStory(format === 'json' ? parseJson(text) : parseYaml(text));
}

/**
 * Reads, parses and validates a story file (at most `maxStoryBytes`). The format follows the
 * extension: `.json` is JSON, `.yaml`/`.yml` YAML, anything else is detected from the text.
 */
export async function loadStory(path: string): Promise<Story> {
  let text: string;
  try {
    const file = await open(path, 'r');
    try {
      const stat = await file.stat();
      if (!stat.isFile()) throw new StoryLoadError(path, 'not a regular file');
      if (stat.size > maxStoryBytes)
        refuse(`story file is ${stat.size} bytes, larger than the limit of ${maxStoryBytes}`);
      // Read one byte past the limit: a file that grew since stat is still caught.
      const buffer = Buffer.alloc(maxStoryBytes + 1);
      let length = 0;
      while (length < buffer.length) {
        const { bytesRead } = await file.read(buffer, length, buffer.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      if (length > maxStoryBytes) refuse(`story file is larger than the limit of ${maxStoryBytes} bytes`);
      text = decodeUtf8(buffer.subarray(0, length));
    } finally {
      await file.close();
    }
  } catch (error) {
    if (error instanceof StoryValidationError || error instanceof StoryLoadError) throw error;
    throw new StoryLoadError(path, errorMessage(error), { cause: error });
  }
  const extension = extname(path).toLowerCase();
  const format: StoryFormat | undefined =
    extension === '.json' ? 'json' : extension === '.yaml' || extension === '.yml' ? 'yaml' : undefined;
  return parseStory(text, format === undefined ? {} : { format });
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return refuse('story file is not valid UTF-8');
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    return refuse(`not valid JSON: ${errorMessage(error)}`, error);
  }
}

function parseYaml(text: string): unknown {
  try {
    const document = parseDocument(text, {
      version: '1.2',
      schema: 'core',
      customTags: [],
      merge: false,
      uniqueKeys: true,
      strict: true,
      stringKeys: true,
      prettyErrors: true,
    });
    const first = document.errors[0] ?? document.warnings[0];
    if (first !== undefined) refuse(`not valid YAML: ${firstLine(first.message)}`);
    let tag: string | undefined;
    visit(document, (_key, node) => {
      if (typeof node === 'object' && node !== null && 'tag' in node && typeof node.tag === 'string') {
        tag = node.tag;
        return visit.BREAK;
      }
      return undefined;
    });
    // Explicit tags (`!!binary`, `!!set`, `!custom`) build values no story field takes.
    if (tag !== undefined) refuse(`YAML tags are not allowed, found ${tag}`);
    return document.toJS({ maxAliasCount: maxYamlAliases }) as unknown;
  } catch (error) {
    if (error instanceof StoryValidationError) throw error;
    // The yaml package throws a ReferenceError on an alias bomb, a RangeError on absurd nesting.
    return refuse(`not a usable YAML story: ${firstLine(errorMessage(error))}`, error);
  }
}

function firstLine(message: string): string {
  const line = message.split('\n', 1)[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 197)}…` : line;
}

function refuse(message: string, cause?: unknown): never {
  throw new StoryValidationError(
    [{ path: '', stepId: undefined, message }],
    {},
    cause === undefined ? undefined : { cause },
  );
}
