import type { RefObject } from 'preact';
import { useEffect, useState } from 'preact/hooks';

export interface ScrollWindow {
  scrollTop: number;
  clientHeight: number;
  clientWidth: number;
}

/**
 * The scroll position and size of an element, updated at most once a frame:
 * what virtualized lists need to decide which rows exist in the DOM.
 */
export function useScrollWindow(ref: RefObject<HTMLElement | null>): ScrollWindow {
  const [state, setState] = useState<ScrollWindow>({ scrollTop: 0, clientHeight: 800, clientWidth: 1000 });
  useEffect(() => {
    const element = ref.current;
    if (!element) return;
    let frame = 0;
    const measure = () => {
      frame = 0;
      setState((prev) =>
        prev.scrollTop === element.scrollTop && prev.clientHeight === element.clientHeight && prev.clientWidth === element.clientWidth
          ? prev
          : { scrollTop: element.scrollTop, clientHeight: element.clientHeight, clientWidth: element.clientWidth },
      );
    };
    const schedule = () => {
      if (!frame) frame = requestAnimationFrame(measure);
    };
    measure();
    element.addEventListener('scroll', schedule, { passive: true });
    const observer = new ResizeObserver(schedule);
    observer.observe(element);
    return () => {
      element.removeEventListener('scroll', schedule);
      observer.disconnect();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [ref]);
  return state;
}

/** Scroll `element` the least amount that shows [top, bottom) (content coordinates), with a margin. */
export function scrollIntoRange(element: HTMLElement, top: number, bottom: number, headerHeight: number, center = false): void {
  const viewTop = element.scrollTop + headerHeight;
  const viewBottom = element.scrollTop + element.clientHeight;
  const margin = 48;
  if (center) {
    element.scrollTop = Math.max(0, (top + bottom) / 2 - headerHeight - (element.clientHeight - headerHeight) / 2);
  } else if (top < viewTop + margin / 2) {
    element.scrollTop = Math.max(0, top - headerHeight - margin);
  } else if (bottom > viewBottom - margin / 2) {
    element.scrollTop = bottom - element.clientHeight + margin;
  }
}
