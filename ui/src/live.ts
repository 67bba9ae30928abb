import { useEffect, useState } from 'preact/hooks';
import type { LiveChainEvent } from '../../collector/api-types.ts';
import { subscribeLive, type LiveState } from './api.ts';

/** Chain events from `GET /api/live` while the component is mounted; returns the connection state. */
export function useLive(onEvent: (event: LiveChainEvent) => void): LiveState {
  const [state, setState] = useState<LiveState>('connecting');
  useEffect(() => subscribeLive(onEvent, setState), [onEvent]);
  return state;
}
