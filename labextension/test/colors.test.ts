import { activationColor, colorFor, legend, surprise } from '../src/colors';

describe('colour scale', () => {
  it('maps log-probs to surprise in [0, 1], clamped, NaN to none', () => {
    expect(surprise(0)).toBe(0);
    expect(surprise(-5, -10)).toBe(0.5);
    expect(surprise(-30, -10)).toBe(1);
    expect(surprise(NaN)).toBeNull();
  });

  it('grows alpha with surprise and is transparent without a value', () => {
    expect(colorFor(null)).toBe('transparent');
    const alpha = (c: string) => Number(c.match(/, ([\d.]+)\)$/)![1]);
    expect(alpha(colorFor(0.2))).toBeLessThan(alpha(colorFor(0.8)));
    expect(colorFor(2)).toBe(colorFor(1));
  });

  it('viridis runs from purple to yellow', () => {
    expect(colorFor(0, 'viridis')).toBe('rgba(68, 1, 84, 0.45)');
    expect(colorFor(1, 'viridis')).toBe('rgba(253, 231, 37, 0.45)');
  });

  it('colours activations relative to the max, none for negative', () => {
    expect(activationColor(-0.1, 2)).toBe('transparent');
    expect(activationColor(1, 0)).toBe('transparent');
    expect(activationColor(2, 2)).toBe('rgba(40, 120, 230, 0.650)');
  });

  it('has five legend stops', () => {
    expect(legend('surprise', -10).map(([label]) => label)).toEqual(['0.0', '-2.5', '-5.0', '-7.5', '-10.0']);
  });
});
