/**
 * The README's code blocks that a user pastes are the files of examples/, which
 * `npm run check:package` runs against RabbitMQ and the installed collector. A block
 * is marked by the comment line `<!-- examples/NAME -->` right above its fence.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');
const exampleFiles = readdirSync(new URL('examples/', root)).sort();

/** Every marked block: the file it names and the code between its fences. */
function markedBlocks(markdown: string): { file: string; code: string }[] {
  const blocks: { file: string; code: string }[] = [];
  const marker = /^<!-- (examples\/[^ ]+) -->\n```[a-z]*\n([\s\S]*?)^```$/gm;
  for (const m of markdown.matchAll(marker)) blocks.push({ file: m[1]!, code: m[2]! });
  return blocks;
}

describe('README code blocks and examples/', () => {
  const blocks = markedBlocks(readme);

  it('every example file appears in the README exactly once', () => {
    expect(blocks.map((b) => b.file).sort()).toEqual(exampleFiles.map((f) => `examples/${f}`));
  });

  it('every marker sits right above a code fence', () => {
    const markers = [...readme.matchAll(/^<!-- examples\//gm)].length;
    expect(markers).toBe(blocks.length);
  });

  for (const file of exampleFiles) {
    it(`the README block of examples/${file} is the file, byte for byte`, () => {
      const block = blocks.find((b) => b.file === `examples/${file}`);
      expect(block?.code).toBe(readFileSync(new URL(`examples/${file}`, root), 'utf8'));
    });
  }

  it('the Quick start install line lists every package the examples import', () => {
    const install = /```bash\nnpm install (hoptrace [^\n]+)\n```/.exec(readme)?.[1]?.split(' ') ?? [];
    const sdkInstall = /```bash\nnpm install (@opentelemetry\/sdk-node [^\n]+)\n```/.exec(readme)?.[1]?.split(' ') ?? [];
    const imported = new Set(
      exampleFiles.flatMap((f) =>
        [...readFileSync(new URL(`examples/${f}`, root), 'utf8').matchAll(/(?:from|import) '([^']+)'/g)]
          .map((m) => m[1]!.replace(/^(hoptrace)\/.*$/, '$1'))
          .filter((name) => !name.startsWith('node:')),
      ),
    );
    expect([...imported].filter((name) => !install.includes(name)).sort()).toEqual([]);
    expect(sdkInstall.length).toBeGreaterThan(0);
  });
});
