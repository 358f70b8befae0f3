/** Issue #24's defects that pure functions decide: the comparison's clamp, a component checked against the model's shape. */
import { clampedDiff, diffColor } from '../src/colors';
import { componentProblem } from '../src/interventions';

describe('the comparison clamps both models alike (defect 2)', () => {
  it('does not colour a token where both are below the clamp as a win for B', () => {
    // A -8.26, B -8.66, clamp -6: A is better; before, lp_A - max(lp_B, clamp) = -2.26 read as "B better"
    expect(clampedDiff(-8.26, -8.66, -6)).toBe(0);
    expect(diffColor(clampedDiff(-8.26, -8.66, -6))).toBe('transparent');
    expect(clampedDiff(-9, -7, -6)).toBe(0);
  });

  it('keeps A’s wins as the corpus comparison ranks them, and bounds B’s by the clamp', () => {
    expect(clampedDiff(-2, -10, -6)).toBe(4); // = lp_A - max(lp_B, clamp)
    expect(clampedDiff(-1, -3, -6)).toBe(2);
    expect(clampedDiff(-10, -2, -6)).toBe(-4); // B wins, A's side clamped too
    expect(clampedDiff(-3, -1, -6)).toBe(-2);
  });
});

describe('a typed component is checked against the model’s shape (defect 4)', () => {
  const shape = { n_layers: 1, d_mlp: 1024, n_heads: 8 };

  it('refuses what the model does not have, saying what it has', () => {
    expect(componentProblem({ component: 'neuron', layer: 0, index: 99999 }, shape, 'lenscope-gelu-1l')).toMatch(/1024 neurons per layer/);
    expect(componentProblem({ component: 'neuron', layer: 1, index: 3 }, shape)).toMatch(/1 layer/);
    expect(componentProblem({ component: 'head', layer: 0, index: 8 }, shape)).toMatch(/8 heads/);
    expect(componentProblem({ component: 'mlp', layer: 0, index: null }, { ...shape, d_mlp: null })).toMatch(/attention-only/);
  });

  it('accepts what it has, and leaves an unknown shape to the server', () => {
    expect(componentProblem({ component: 'neuron', layer: 0, index: 1023 }, shape)).toBeNull();
    expect(componentProblem({ component: 'head', layer: 0, index: 7 }, shape)).toBeNull();
    expect(componentProblem({ component: 'resid', layer: 0, index: null }, shape)).toBeNull();
    expect(componentProblem({ component: 'head', layer: 0, index: 50 }, { n_layers: 1, d_mlp: 1024 })).toBeNull();
    expect(componentProblem({ component: 'neuron', layer: 0, index: 99999 }, null)).toBeNull();
  });
});
