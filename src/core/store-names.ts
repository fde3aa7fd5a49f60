/*
 * Which run key an object's name belongs to, and the literal start a listing
 * of every key may send: what scan and clean on S3 prefixes list by.
 */
import { memoizedRunKeyCheck } from './run-key.js';
import type { PipelineSettings } from './settings.js';
import type { StagingName } from './template.js';

/** The run keys a name is the staging file, the output, or the marker of. */
export interface NamingRules {
  staging(name: string): StagingName | undefined;
  outputs(name: string): OutRoles | undefined;
  /** The literal every staging name of any key starts with. */
  readonly stagingPrefix: string;
  /** The literal every output and marker name of any key starts with. */
  readonly outPrefix: string;
}

export interface OutRoles {
  readonly finalKey: string | undefined;
  readonly markerKey: string | undefined;
}

export function namingRules(settings: PipelineSettings): NamingRules {
  const isValid = memoizedRunKeyCheck();
  const valid = (key: string | undefined): string | undefined => (key !== undefined && isValid(key) ? key : undefined);
  const outNames = (key: string) => {
    const finalName = settings.final.nameFor(key);
    return [finalName, ...(settings.marker ? [settings.marker.nameFor(key, finalName)] : [])];
  };
  return {
    staging(name) {
      const match = settings.staging.matchAny(name);
      return match && valid(match.runKey) !== undefined ? match : undefined;
    },
    outputs(name) {
      const finalKey = valid(settings.final.runKeyOf(name));
      const markerKey = valid(settings.marker?.runKeyOf(name, settings.final));
      return finalKey === undefined && markerKey === undefined ? undefined : { finalKey, markerKey };
    },
    stagingPrefix: stagingListingPrefix(settings),
    outPrefix: commonStart([...outNames('0'), ...outNames('1')]),
  };
}

/** The longest text every one of `names` starts with: what a listing by prefix may send. */
export function commonStart(names: readonly string[]): string {
  const [first = ''] = names;
  let length = first.length;
  for (const name of names) {
    let i = 0;
    while (i < length && i < name.length && name[i] === first[i]) i++;
    length = i;
  }
  return first.slice(0, length);
}

/** The literal every staging name of any run key starts with: what a listing of all keys may send. */
export function stagingListingPrefix(settings: Pick<PipelineSettings, 'staging'>): string {
  return commonStart([settings.staging.prefixFor('0'), settings.staging.prefixFor('1')]);
}
