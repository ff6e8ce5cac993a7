// Dependency rules (npm run lint): no cycles, the engine's floors, and its one front door.
// The engine's folders, from the ground up: a folder may import its own floor and the floors below it.
const FLOORS = [
  ['control', 'hash'],
  ['spill'],
  ['state'],
  ['profile'],
  ['thread'],
  ['early-send'],
  ['read', 'diff'],
  ['send'],
  ['run'],
];
const folders = (list) => `^shared/engine/(${list.join('|')})/`;

const floorRules = FLOORS.slice(0, -1).map((floor, i) => ({
  name: `engine-floor-${floor.join('-')}`,
  comment: `${floor.join(', ')} may not import a floor above it`,
  severity: 'error',
  from: { path: folders(floor) },
  to: { path: folders(FLOORS.slice(i + 1).flat()) },
}));
const sameFloorRules = FLOORS.filter((f) => f.length > 1).flatMap((floor) =>
  floor.map((folder) => ({
    name: `engine-floor-${folder}-alone`,
    comment: `${folder} does not import the other folders of its floor`,
    severity: 'error',
    from: { path: folders([folder]) },
    to: { path: folders(floor.filter((f) => f !== folder)) },
  })),
);

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'engine-front-door',
      comment: 'Outside the engine, app code imports it only through shared/engine/index.ts (tests may reach its parts)',
      severity: 'error',
      from: { path: '^(shared|functions|scripts)/', pathNot: '^shared/engine/' },
      to: { path: '^shared/engine/', pathNot: '^shared/engine/index\\.ts$' },
    },
    {
      name: 'engine-only-from-root',
      comment: 'The engine does not import the app around it beyond its settings types, Braze client, snapshot reader and stores',
      severity: 'error',
      from: { path: '^shared/engine/' },
      to: { path: '^(functions|scripts|test|console)/' },
    },
    {
      name: 'app-not-from-dev',
      comment:
        'What is deployed (functions/, shared/) imports no dev script or test: their certificates and sandboxes never ship',
      severity: 'error',
      from: { path: '^(shared|functions)/' },
      to: { path: '^(scripts|test)/' },
    },
    {
      name: 'functions-thin',
      comment: 'Function files are leaves: nothing imports them but the entry point',
      severity: 'error',
      from: { pathNot: '^(functions/index\\.ts$|test/)' },
      to: { path: '^functions/', pathNot: '^functions/index\\.ts$' },
    },
    {
      name: 'engine-thread-lean',
      comment:
        "The engine's worker thread does not import the Braze client: each module it loads is compiled again in every thread started. Packages are not followed here, and type-only imports count: test/integration/engine-thread-modules.test.ts checks what the built thread loads, the Azure SDK, zod and cron-parser included",
      severity: 'error',
      from: { path: '^shared/engine/run/engine-thread\\.ts$' },
      to: { path: '^shared/braze/(client|transport|request-budget)\\.ts$', reachable: true },
    },
    ...floorRules,
    ...sameFloorRules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules|coverage|test-output)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
