/**
 * A deployment's traffic as the panel shows it: the versions' shares as one bar, and the
 * canary's step, next decision and last reason. Pure functions, unit-tested.
 */
import { ICanary, ITraffic } from './client';

export interface IShare {
  version: number;
  share: number; // 0..1 of the callers' requests
  label: string;
  role: 'live' | 'split' | 'canary' | 'shadow';
}

/** One segment per serving version (live first), plus the shadow (it gets copies only). */
export function shares(traffic: ITraffic | undefined): IShare[] {
  if (!traffic) {
    return [];
  }
  const canary = traffic.canary?.state === 'running' ? traffic.canary : null;
  const out: IShare[] = Object.entries(traffic.weights)
    .map(([v, w]) => ({ version: Number(v), share: w }))
    .filter(s => s.share > 0)
    .sort((a, b) =>
      a.version === traffic.live
        ? -1
        : b.version === traffic.live
          ? 1
          : a.version - b.version
    )
    .map(s => ({
      ...s,
      role:
        s.version === traffic.live
          ? 'live'
          : canary && s.version === canary.version
            ? 'canary'
            : 'split',
      label: `v${s.version} ${Math.round(s.share * 100)}%`
    }));
  if (traffic.shadow) {
    const { version, rate } = traffic.shadow;
    out.push({
      version,
      share: 0,
      role: 'shadow',
      label: `v${version} shadow ${Math.round(rate * 100)}%`
    });
  }
  return out;
}

/** True when the bar tells more than "one version takes everything". */
export function isSplit(traffic: ITraffic | undefined): boolean {
  return shares(traffic).length > 1;
}

/** "canary v3 at 25% (step 2 of 4) · next decision in 40 s · healthy so far", or the end. */
export function canaryLine(
  canary: ICanary | null | undefined,
  nowSeconds: number
): string {
  if (!canary) {
    return '';
  }
  const reason = canary.reason ? ` · ${canary.reason}` : '';
  if (canary.state !== 'running') {
    const ended = canary.state.replace('_', ' ');
    return `canary v${canary.version} ${ended}${reason}`;
  }
  const step = `step ${canary.step + 1} of ${canary.steps.length}`;
  const wait =
    canary.next_decision === null
      ? ''
      : ` · next decision in ${Math.max(0, Math.round(canary.next_decision - nowSeconds))} s`;
  return `canary v${canary.version} at ${Math.round(canary.share * 100)}% (${step})${wait}${reason}`;
}
