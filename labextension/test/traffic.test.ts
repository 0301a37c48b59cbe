import { ITraffic } from '../src/client';
import { canaryLine, isSplit, shares } from '../src/traffic';

const canary = {
  version: 3,
  baseline: 2,
  state: 'running',
  share: 0.25,
  step: 1,
  steps: [0.1, 0.25, 0.5, 1],
  next_decision: 1_000_040,
  reason: 'healthy over 60 requests at 10%'
};

describe('traffic', () => {
  it('puts the live version first, then the canary, then the shadow', () => {
    const traffic: ITraffic = {
      live: 2,
      weights: { '3': 0.25, '2': 0.75 },
      shadow: { version: 4, rate: 0.5, agreement: 0.9 },
      canary
    };
    expect(shares(traffic).map(s => [s.label, s.role])).toEqual([
      ['v2 75%', 'live'],
      ['v3 25%', 'canary'],
      ['v4 shadow 50%', 'shadow']
    ]);
    expect(isSplit(traffic)).toBe(true);
  });

  it('shows no bar for one version taking everything', () => {
    const one: ITraffic = {
      live: 1,
      weights: { '1': 1 },
      shadow: null,
      canary: null
    };
    expect(isSplit(one)).toBe(false);
    expect(isSplit(undefined)).toBe(false);
  });

  it("says the canary's step, next decision and reason, or how it ended", () => {
    expect(canaryLine(canary, 1_000_000)).toBe(
      'canary v3 at 25% (step 2 of 4) · next decision in 40 s · healthy over 60 requests at 10%'
    );
    const back = {
      ...canary,
      state: 'rolled_back',
      reason: 'error rate 50.0%'
    };
    expect(canaryLine(back, 0)).toBe(
      'canary v3 rolled back · error rate 50.0%'
    );
    expect(canaryLine(null, 0)).toBe('');
  });
});
