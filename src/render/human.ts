// Everything the human views need, behind one lazy import: chalk, cli-table3
// and the renderers stay off the --json path (and, in the built bin, in a
// file of their own that is only read when a person is looking).
export { chalkFor } from './colour.js';
export { renderDiagnosisHuman } from './human-diagnosis.js';
export { renderFixHuman } from './human-fix.js';
export { renderHistoryHuman } from './human-history.js';
export { renderScanHuman } from './scan.js';
