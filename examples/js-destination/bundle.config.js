// Rolldown settings for `jco componentize --bundle` (npm run build): the contract's own imports
// (audience:destination/...) are provided by the host, not bundled. jco already leaves wasi:*
// imports alone.
export default {
  external: [/^audience:destination\//],
};
