// Whatever the schema accepts, storage takes: fuzzed create/patch bodies against Azurite never
// get a 500 — a 2xx that reads back as sent, or a 4xx that names the problem.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { connectionItem } from '../../functions/connectionItem';
import { connectionsCollection } from '../../functions/connectionsCollection';
import { exportItem } from '../../functions/exportItem';
import { exportsCollection } from '../../functions/exportsCollection';
import { call, useAzurite } from '../helpers/app';

useAzurite();

/** Text with what storage keys and properties dislike: / \ # ?, control characters, lone surrogates, astral characters. */
const nasty = (maxLength: number) =>
  fc.oneof(
    fc.string({ maxLength, unit: 'binary' }),
    fc.string({
      maxLength,
      unit: fc.constantFrom(
        '/',
        '\\',
        '#',
        '?',
        '\u0000',
        '\u001f',
        '\u007f',
        '\u0085',
        '\ud800',
        '\udfff',
        '😀',
        'é',
        ' ',
        "'",
        '"',
        '%',
        'a',
      ),
    }),
  );

const statusOk = (status: number) => status < 500;

describe('fuzzed bodies never get a 500', () => {
  it('connections: create and rename', async () => {
    await fc.assert(
      fc.asyncProperty(nasty(140), nasty(140), async (name, rename) => {
        const created = await call(connectionsCollection, {
          method: 'POST',
          path: 'connections',
          body: { displayName: name, restEndpoint: 'rest.iad-03.braze.com', apiKey: 'fuzz-key-0123456789', consent: true },
        });
        expect(created.status, JSON.stringify(created.body)).toSatisfy(statusOk);
        if (created.status !== 201) return;
        expect(created.body.displayName).toBe(name.trim());
        const renamed = await call(connectionItem, {
          method: 'PATCH',
          path: `connections/${created.body.id}`,
          params: { id: created.body.id },
          body: { displayName: rename },
        });
        expect(renamed.status, JSON.stringify(renamed.body)).toSatisfy(statusOk);
        // Names stay unique whatever they hold: the same name again is a 409.
        const again = await call(connectionsCollection, {
          method: 'POST',
          path: 'connections',
          body: {
            displayName: renamed.status === 200 ? rename : name,
            restEndpoint: 'rest.iad-03.braze.com',
            apiKey: 'fuzz-key-0123456789',
            consent: true,
          },
        });
        expect(again.status).toBe(409);
        await call(connectionItem, { method: 'DELETE', path: `connections/${created.body.id}`, params: { id: created.body.id } });
      }),
      { numRuns: 60 },
    );
  }, 120_000);

  it('exports: create and patch, up to the schema limits', async () => {
    const conn = await call(connectionsCollection, {
      method: 'POST',
      path: 'connections',
      body: { displayName: 'Fuzz target', restEndpoint: 'rest.iad-03.braze.com', apiKey: 'fuzz-key-0123456789', consent: true },
    });
    const connectionId = conn.body.id as string;
    const segments = fc.uniqueArray(nasty(256), { maxLength: 100 });
    const attributes = fc.dictionary(nasty(255), nasty(256), { maxKeys: 100 });
    await fc.assert(
      fc.asyncProperty(
        nasty(256),
        nasty(420),
        segments,
        attributes,
        nasty(140),
        async (name, folder, segs, attrs, aliasLabel) => {
          const body = {
            name,
            connectionId,
            brazeSegmentApiId: 'seg-1',
            source: { container: 'ci-exports', folder },
            segments: segs,
            matching: {
              profileId: 'CustomerId',
              email: 'PrimaryEmail',
              brazeCustomerId: 'BrazeUserId',
              attributes: attrs,
              aliasLabel,
            },
          };
          const created = await call(exportsCollection, { method: 'POST', path: 'exports', body });
          expect(created.status, JSON.stringify(created.body).slice(0, 500)).toSatisfy(statusOk);
          if (created.status !== 201) return;
          const read = await call(exportItem, {
            method: 'GET',
            path: `exports/${created.body.id}`,
            params: { id: created.body.id },
          });
          expect(read.body.matching.attributes).toEqual(created.body.matching.attributes);
          const patched = await call(exportItem, {
            method: 'PATCH',
            path: `exports/${created.body.id}`,
            params: { id: created.body.id },
            body: { name: folder, segments: segs.slice(0, 1) },
          });
          expect(patched.status, JSON.stringify(patched.body).slice(0, 500)).toSatisfy(statusOk);
        },
      ),
      { numRuns: 60 },
    );
  }, 180_000);

  it('the largest definition the schema accepts is stored and read back whole', async () => {
    const conn = await call(connectionsCollection, {
      method: 'POST',
      path: 'connections',
      body: { displayName: 'Largest', restEndpoint: 'rest.iad-03.braze.com', apiKey: 'fuzz-key-0123456789', consent: true },
    });
    const attributes = Object.fromEntries(
      Array.from({ length: 100 }, (_, i) => [
        `${'a'.repeat(250)}${String(i).padStart(3, '0')}`,
        `${'C'.repeat(253)}${String(i).padStart(3, '0')}`,
      ]),
    );
    const segments = Array.from({ length: 100 }, (_, i) => `${'S'.repeat(253)}${String(i).padStart(3, '0')}`);
    const body = {
      name: 'N'.repeat(256),
      connectionId: conn.body.id,
      brazeSegmentApiId: 'seg-1',
      source: { container: 'ci-exports', folder: 'f'.repeat(400) },
      segments,
      matching: { profileId: 'CustomerId', email: 'PrimaryEmail', brazeCustomerId: 'BrazeUserId', attributes },
    };
    const created = await call(exportsCollection, { method: 'POST', path: 'exports', body });
    expect(created.status).toBe(201);
    const read = await call(exportItem, { method: 'GET', path: `exports/${created.body.id}`, params: { id: created.body.id } });
    expect(read.body.segments).toEqual(segments);
    expect(read.body.matching.attributes).toEqual(attributes);
  });
});
