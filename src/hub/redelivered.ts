// The packet metadata the hub sets on a packet it sends again (a replay after a reconnect, a
// blue-green cutover or a hub restart), so the step can tell it may have seen it before.
export const REDELIVERED_METADATA_KEY = 'weft-redelivered';
