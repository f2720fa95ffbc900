// The shared secret of the hub suite's two-node grid (the bench's node and the hub's).
export const hubGridSecret = 'weft-bench-hub-grid-secret';
