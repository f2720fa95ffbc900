import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  deleteEvent,
  ListView,
  MapView,
  putEvent,
  type Event,
  type MapChange,
} from '../../src/views/index.ts';

describe('MapView', () => {
  test('put sets a key, a later put replaces it, delete removes it', () => {
    const view = new MapView<number>();
    view.update([putEvent('a', 1), putEvent('b', 2)]);
    view.update([putEvent('a', 3), deleteEvent('b'), deleteEvent('never-there')]);
    assert.deepEqual([...view.result()], [['a', 3]]);
    assert.equal(view.size, 1);
  });

  test('a result is a copy: later updates and resets do not change what a caller was given', () => {
    const view = new MapView<number>();
    view.update([putEvent('a', 1)]);
    const before = view.result();
    view.update([putEvent('a', 2), putEvent('b', 3)]);
    assert.deepEqual([...before], [['a', 1]]);
    view.reset();
    assert.deepEqual([...before], [['a', 1]]);
    assert.equal(view.result().size, 0);
  });

  test('an unknown op throws a TypeError', () => {
    const view = new MapView<number>();
    const bad = { subject: 'a', payload: { op: 'upsert', value: 1 } } as unknown as Event<MapChange<number>>;
    assert.throws(() => {
      view.update([bad]);
    }, TypeError);
  });
});

describe('ListView', () => {
  test('without a compare function, values come in the order their keys first appeared', () => {
    const view = new ListView<string>();
    view.update([putEvent('z', 'zed'), putEvent('a', 'ay'), putEvent('m', 'em')]);
    view.update([putEvent('z', 'zed2')]);
    assert.deepEqual(view.result(), ['zed2', 'ay', 'em']);
    view.update([deleteEvent('a'), putEvent('a', 'ay again')]);
    assert.deepEqual(view.result(), ['zed2', 'em', 'ay again']);
  });

  test('with a compare function, values come sorted by it', () => {
    const view = new ListView<{ name: string }>({ compare: (x, y) => x.name.localeCompare(y.name) });
    view.update([
      putEvent('3', { name: 'carol' }),
      putEvent('1', { name: 'alice' }),
      putEvent('2', { name: 'bob' }),
    ]);
    assert.deepEqual(
      view.result().map((member) => member.name),
      ['alice', 'bob', 'carol'],
    );
  });

  test('a result is frozen and unchanged by later updates; reset empties the view', () => {
    const view = new ListView<number>();
    view.update([putEvent('a', 1)]);
    const before = view.result();
    assert.ok(Object.isFrozen(before));
    view.update([putEvent('b', 2)]);
    assert.deepEqual(before, [1]);
    view.reset();
    assert.deepEqual(view.result(), []);
  });

  test('an unknown op throws', () => {
    const view = new ListView<number>();
    const bad = { subject: 'a', payload: { op: 'nope' } } as unknown as Event<MapChange<number>>;
    assert.throws(() => {
      view.update([bad]);
    }, TypeError);
  });
});
