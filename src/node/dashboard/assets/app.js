// The Weft node dashboard: follows three views of the node over Server-Sent Events and renders
// them. Event handlers only store the latest raw value and ask for a frame; the panels render
// at most once per frame, from the newest value (see frame-scheduler.js).
/* global document */

import { isRecord } from './format.js';
import { createFrameScheduler } from './frame-scheduler.js';
import { createFunctionsPanel } from './functions-panel.js';
import { createGridPanel } from './grid-panel.js';
import { createHeader } from './header.js';
import { followView } from './live-view.js';
import { createMembersPanel } from './members-panel.js';
import { createPlotsPanel } from './plots-panel.js';
import { createSectionPanel } from './section-panel.js';
import { CLUSTER_SPEC, HUB_SPEC, MIRROR_SPEC, RUNTIME_SPEC } from './section-specs.js';
import { observeServerTime, serverNow } from './server-clock.js';
import { StatsModel } from './stats-model.js';
import { createViewsPanel } from './views-panel.js';

function byId(id) {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`dashboard: the page has no #${id}`);
  return node;
}

const schedule = createFrameScheduler();
const stats = new StatsModel();
let members = {};
let pendingMembers;
let pendingFunctions;

function memberName(host) {
  const member = members[host];
  return isRecord(member) && typeof member.name === 'string' && member.name.length > 0
    ? member.name
    : undefined;
}

function selfMember() {
  return Object.values(members).find((member) => isRecord(member) && member.self === true);
}

const header = createHeader({
  nameLabel: byId('node-name'),
  urlLabel: byId('node-url'),
  uptimeLabel: byId('uptime'),
  streamList: byId('streams'),
});
const membersPanel = createMembersPanel(byId('members'), byId('members-count'), byId('members-empty'));
const gridPanel = createGridPanel(byId('grid-connections'), byId('grid-count'), byId('grid-empty'));
const viewsPanel = createViewsPanel(byId('views'), byId('views-empty'));
const runtimePanel = createSectionPanel(byId('runtime'), RUNTIME_SPEC);
const clusterPanel = createSectionPanel(byId('cluster'), CLUSTER_SPEC);
const hubPanel = createSectionPanel(byId('hub'), HUB_SPEC);
const mirrorPanel = createSectionPanel(byId('mirror'), MIRROR_SPEC);
const plotsPanel = createPlotsPanel(byId('plot-area'), schedule, (host) => memberName(host) ?? host);
const functionsPanel = createFunctionsPanel({
  typesBody: byId('function-types'),
  rowsBody: byId('functions'),
  filterInput: byId('function-filter'),
  previousButton: byId('function-prev'),
  nextButton: byId('function-next'),
  pageLabel: byId('function-page'),
  countLabel: byId('function-count'),
  emptyNote: byId('functions-empty'),
});

/** Parses a view's value; an unreadable one is reported on the view's indicator and skipped. */
function parseValue(text, reportStatus) {
  try {
    return JSON.parse(text);
  } catch {
    reportStatus('error', 'received an update that is not JSON');
    return undefined;
  }
}

function renderMembers() {
  if (pendingMembers !== undefined) {
    const { text, reportStatus } = pendingMembers;
    pendingMembers = undefined;
    const value = parseValue(text, reportStatus);
    if (value !== undefined) members = isRecord(value) ? value : {};
  }
  membersPanel.render(members, serverNow());
  header.render(stats.latest, selfMember());
}

function renderStats() {
  const latest = stats.latest;
  header.render(latest, selfMember());
  gridPanel.render(latest, stats.connectionRates, memberName);
  viewsPanel.render(latest);
  runtimePanel.render(latest?.runtime, stats);
  clusterPanel.render(latest?.cluster, stats);
  hubPanel.render(latest?.hub, stats);
  mirrorPanel.render(latest?.mirror, stats);
  plotsPanel.render(stats);
}

function renderFunctions() {
  if (pendingFunctions !== undefined) {
    const { text, reportStatus } = pendingFunctions;
    pendingFunctions = undefined;
    const value = parseValue(text, reportStatus);
    if (value !== undefined) functionsPanel.setEntries(value);
  }
  functionsPanel.render(serverNow());
}

functionsPanel.onChange = () => schedule(renderFunctions);

function follow(viewName, onUpdate) {
  const reportStatus = header.indicatorFor(viewName);
  followView(viewName, { onUpdate: (text) => onUpdate(text, reportStatus), onStatus: reportStatus });
}

follow('cluster.members', (text, reportStatus) => {
  pendingMembers = { text, reportStatus };
  schedule(renderMembers);
});

// Stats are taken in as they arrive, not at the next frame: every snapshot is a point on the
// plots and a base for the next rate, even while the tab is hidden and no frames run.
follow('node.stats', (text, reportStatus) => {
  const value = parseValue(text, reportStatus);
  if (!isRecord(value)) return;
  observeServerTime(value.now);
  stats.ingest(value);
  schedule(renderStats);
  // Ages ("since", "updated") move on with the node's clock.
  schedule(renderMembers);
  schedule(renderFunctions);
});

follow('functions', (text, reportStatus) => {
  pendingFunctions = { text, reportStatus };
  schedule(renderFunctions);
});

schedule(renderMembers);
schedule(renderStats);
schedule(renderFunctions);
