// eslint flat config for the labextension's TypeScript sources.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['labextension/lib/**', 'labextension/lib-test/**', 'labextension/src/api/schema.ts', 'server_ext/**', 'node_modules/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['labextension/**/*.ts'],
    rules: {
      '@typescript-eslint/no-namespace': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      eqeqeq: 'error',
      'prefer-const': 'error'
    }
  }
);
