export { BioViewer, mergeView } from './viewer';
export type { ViewerOptions } from './viewer';
export * from './types';
export { jsonEqual } from './format';
