// Debian's Chromium as this machine runs it headless (the browser tests and the node benchmark
// share it): without the background-networking flags it keeps trying hosts the closed network
// refuses. A tool of the machine, installed by `.ci/run`; never downloaded.

export const CHROMIUM_BINARY = '/usr/bin/chromium';

export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
