// The handshake's golden vectors in docs/wire/grid.md: the transcript and both tokens of
// the documented exchange, computed here from the documented Challenge and Connect.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { handshakeTranscript, hmacAuth, type HandshakeClaims } from '../../src/grid/auth.ts';
import { decodeFrame } from '../../src/grid/frame.ts';
import { decodeChallenge, decodeConnect, decodeConnectResponse } from '../../src/grid/messages.ts';
import { Op, PROTOCOL_VERSION } from '../../src/grid/protocol.ts';

const doc = readFileSync(new URL('../../docs/wire/grid.md', import.meta.url), 'utf8');

function vectorHex(name: string): Buffer {
  const match = new RegExp(`\\{"name": "${name}", [^\\n]*"hex": "([0-9a-f]+)"\\}`).exec(doc);
  assert.ok(match?.[1] !== undefined, `no vector ${name}`);
  return Buffer.from(match[1], 'hex');
}

function tokenBlock(): { secret: string; transcript: string; dialler: string; acceptor: string } {
  const block =
    /```text\nsecret: (\S+)\ntranscript \(dialler\):\n([0-9a-f\n]+)token \(dialler\): (\S+)\ntoken \(acceptor\): (\S+)\n```/.exec(
      doc,
    );
  assert.ok(block !== null, 'the handshake token block is in the wire document');
  const [, secret = '', transcript = '', dialler = '', acceptor = ''] = block;
  return { secret, transcript: transcript.replaceAll('\n', ''), dialler, acceptor };
}

test('the documented Challenge, Connect and ConnectResponse carry the documented tokens', () => {
  const challengeFrame = decodeFrame(vectorHex('challenge'));
  const connectFrame = decodeFrame(vectorHex('connect'));
  const responseFrame = decodeFrame(vectorHex('connect-response-accepted'));
  assert.equal(challengeFrame.op, Op.Challenge);
  const challenge = decodeChallenge(challengeFrame.payload);
  const connect = decodeConnect(connectFrame.payload);
  const response = decodeConnectResponse(responseFrame.payload);
  const claims: HandshakeClaims = { version: connect.version, dialler: connect, acceptor: challenge };
  const block = tokenBlock();
  assert.equal(handshakeTranscript('dialler', claims).toString('hex'), block.transcript);
  const auth = hmacAuth(block.secret);
  assert.equal(auth.authToken('dialler', claims), block.dialler);
  assert.equal(auth.authToken('acceptor', claims), block.acceptor);
  assert.equal(connect.token, block.dialler);
  assert.ok(response.accepted);
  assert.equal(response.token, block.acceptor);
  assert.ok(auth.verifyToken(connect.token, 'dialler', claims));
  assert.ok(!auth.verifyToken(connect.token, 'acceptor', claims), 'a token does not pass for the other role');
});

test('the acceptor transcript differs from the dialler one only in the role field', () => {
  const claims: HandshakeClaims = {
    version: PROTOCOL_VERSION,
    dialler: decodeConnect(decodeFrame(vectorHex('connect')).payload),
    acceptor: decodeChallenge(decodeFrame(vectorHex('challenge')).payload),
  };
  const dialler = handshakeTranscript('dialler', claims);
  const acceptor = handshakeTranscript('acceptor', claims);
  const role = (name: string): Buffer =>
    Buffer.concat([Buffer.from([0, 0, 0, name.length]), Buffer.from(name)]);
  assert.deepEqual(
    acceptor,
    Buffer.concat([dialler.subarray(0, 23), role('acceptor'), dialler.subarray(23 + role('dialler').length)]),
  );
});
