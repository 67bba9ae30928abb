// The Node.js version check of the hoptrace command and `npm run demo`, in
// plain JavaScript every Node runs: on an older Node the TypeScript sources
// would fail with ERR_UNKNOWN_FILE_EXTENSION, which says nothing useful.
//
//   node bin/check-node.js "the demo"    exits 1 with a message on Node < 22.15
import { fileURLToPath } from 'node:url';

export const MIN_NODE = '22.15';

/** The message for a Node that is too old, or undefined when `version` is new enough. */
export function nodeTooOld(version, what) {
  const [major, minor] = version.split('.').map(Number);
  const [needMajor, needMinor] = MIN_NODE.split('.').map(Number);
  if (major > needMajor || (major === needMajor && minor >= needMinor)) return undefined;
  return (
    `${what} needs Node.js ${MIN_NODE} or newer (Node 24 LTS recommended); this is v${version}.\n` +
    'Install it from https://nodejs.org, or without root: npm install --prefix "$HOME/.node24" node@24 ' +
    'and put "$HOME/.node24/node_modules/.bin" first on PATH.'
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const message = nodeTooOld(process.versions.node, process.argv[2] ?? 'hoptrace');
  if (message) {
    console.error(message);
    process.exit(1);
  }
}
