// The TypeScript linter (npm run lint). typescript-eslint's recommended rules, plus the ones that
// catch what bit this code base: an unawaited promise, an `any` that crossed a boundary.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
    { ignores: ["build/**", "node_modules/**", "policy/node_modules/**", "policy/build/**", ".local/**", "app/**", "bench/loadgen/**", "host/**"] },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
        files: ["**/*.ts"],
        languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
        rules: {
            "@typescript-eslint/no-floating-promises": "error",
            "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }],
            "@typescript-eslint/no-require-imports": "off",
        },
    },
    {
        // node:test's describe/it return promises the runner awaits; tests read loose JSON on purpose.
        files: ["test/**/*.ts", "policy/test/**/*.ts", "bench/**/*.ts"],
        rules: { "@typescript-eslint/no-floating-promises": "off", "@typescript-eslint/no-explicit-any": "off" },
    },
);
