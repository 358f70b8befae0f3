import { parseServerTiming } from '../src/api/timing';

describe('Server-Timing', () => {
  it('reads durations and where the answer came from', () => {
    expect(parseServerTiming('total;dur=12.3, worker;dur=10.1, source;desc="worker"')).toEqual({
      source: 'worker',
      durations: { total: 12.3, worker: 10.1 }
    });
  });

  it('has no worker time for a cached answer, and tolerates spacing and unquoted values', () => {
    expect(parseServerTiming('total;dur=0.4,source;desc=cache')).toEqual({ source: 'cache', durations: { total: 0.4 } });
    expect(parseServerTiming(' total ; dur=1 ')).toEqual({ source: null, durations: { total: 1 } });
  });

  it('is empty without the header, and skips what it cannot read', () => {
    expect(parseServerTiming(null)).toEqual({ source: null, durations: {} });
    expect(parseServerTiming('total;dur=abc, x, ;')).toEqual({ source: null, durations: {} });
  });
});
