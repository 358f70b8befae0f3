import { neuronPartLabel, signedPart } from '../src/parts';

describe('comparison view labels', () => {
  it('signs a part with 2 decimals', () => {
    expect(signedPart(0.8412)).toBe('+0.84');
    expect(signedPart(-1.2)).toBe('\u22121.20');
    expect(signedPart(0)).toBe('+0.00');
  });
  it("labels a neuron chip 'L0.N5 +0.84'", () => {
    expect(neuronPartLabel({ layer: 0, index: 5, value: 0.84 })).toBe('L0.N5 +0.84');
    expect(neuronPartLabel({ layer: 1, index: 12, value: -0.5 })).toBe('L1.N12 \u22120.50');
  });
});
