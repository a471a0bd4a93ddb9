import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { layer } from '../../src/store/layer.js';

class Base {
  calls = 0;
  greet(name: string): string {
    this.calls++;
    return `hello ${name}`;
  }
}

class Store extends Base {
  state = 'open';
  get busy(): boolean {
    return this.calls > 1;
  }
  close(): void {
    this.state = 'closed';
  }
}

describe('store layer', () => {
  it('wraps every method once, its classes’ included, and reads every other property through, live', () => {
    const store = new Store();
    const wrapped: string[] = [];
    const front = layer(store, (name, fn) => {
      wrapped.push(name);
      return (...args: unknown[]) => fn.apply(store, args);
    });
    assert.deepEqual(wrapped.sort(), ['close', 'greet']);
    assert.equal(front.greet('a'), 'hello a');
    assert.equal(front.calls, 1, 'a data property read through');
    front.greet('b');
    assert.equal(front.busy, true, "a class's accessor read through");
    front.close();
    assert.equal(front.state, 'closed', 'what the store changes later is seen');
  });

  it('a property assigned to the layer shadows the store’s from then on, without changing the store', () => {
    const store = new Store();
    const front = layer(store, (_name, fn) => fn.bind(store));
    const counted: string[] = [];
    const greet = front.greet;
    front.greet = (name: string) => {
      counted.push(name);
      return greet(name);
    };
    front.state = 'diagnostic';
    assert.equal(front.greet('c'), 'hello c');
    assert.deepEqual(counted, ['c']);
    assert.equal(front.state, 'diagnostic');
    assert.equal(store.state, 'open');
  });
});
