import { useEffect, useMemo } from 'preact/hooks';
import { Graph as DagreGraph, layout } from '@dagrejs/dagre';

const NODE_H = 34;
const CHAR_W = 7.2;

// The engine's atom states, in the order a legend shows them.
export const ATOM_STATES = ['PENDING', 'RUNNING', 'SUCCESS', 'RETRYING', 'FAILURE', 'REVERTING', 'REVERTED', 'REVERT_FAILURE', 'IGNORE'];

function label(name) {
  return name.length > 34 ? `${name.slice(0, 33)}…` : name;
}

// structure is what the layout depends on: names and edges, not states,
// so that a state change recolours a node without laying the graph out
// again.
function structureKey(graph) {
  const n = graph.nodes.map((x) => x.name).join('\u0000');
  const e = graph.edges.map((x) => `${x.from}\u0001${x.to}`).join('\u0000');
  return `${n}\u0002${e}`;
}

function computeLayout(graph) {
  const g = new DagreGraph();
  g.setGraph({ rankdir: 'TB', nodesep: 18, ranksep: 30, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of graph.nodes) {
    const w = Math.min(260, Math.max(90, label(n.name).length * CHAR_W + 28));
    g.setNode(n.name, { width: w, height: NODE_H });
  }
  for (const e of graph.edges) {
    if (g.hasNode(e.from) && g.hasNode(e.to)) g.setEdge(e.from, e.to);
  }
  layout(g);
  const nodes = new Map();
  for (const name of g.nodes()) nodes.set(name, g.node(name));
  const edges = g.edges().map((e) => ({ from: e.v, to: e.w, points: g.edge(e).points || [] }));
  const gl = g.graph();
  return { nodes, edges, width: Math.ceil(gl.width || 0), height: Math.ceil(gl.height || 0) };
}

// FlowGraph draws a task's flow: atoms as boxes coloured by state, edges
// from the compiled flow (laid out by dagre).
export function FlowGraph({ graph, selected, onSelect }) {
  const skey = structureKey(graph);
  const lay = useMemo(() => {
    const t0 = performance.now();
    return { ...computeLayout(graph), t0 };
  }, [skey]);

  // Measured by the browser tests: layout, render and paint of a new
  // graph structure (state changes only recolour).
  useEffect(() => {
    const id = requestAnimationFrame(() => {
      performance.measure('graph-render', { start: lay.t0, detail: { nodes: graph.nodes.length } });
    });
    return () => cancelAnimationFrame(id);
  }, [lay]);

  if (!graph.nodes.length) return <p class="muted">This flow has no steps.</p>;

  return (
    <div class="graph-box">
      <svg
        class="graph"
        viewBox={`0 0 ${lay.width} ${lay.height}`}
        style={{ width: `min(100%, ${lay.width}px)` }}
        role="img"
        aria-label={`flow graph, ${graph.nodes.length} steps`}
        data-testid="graph"
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
          </marker>
        </defs>
        {lay.edges.map((e) => (
          <path
            key={`${e.from}>${e.to}`}
            class="edge"
            marker-end="url(#arrow)"
            d={e.points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')}
          />
        ))}
        {graph.nodes.map((n) => {
          const p = lay.nodes.get(n.name);
          if (!p) return null;
          const x = p.x - p.width / 2;
          const y = p.y - p.height / 2;
          return (
            <g
              key={n.name}
              class={`node state-${n.state}${selected === n.name ? ' selected' : ''}`}
              data-node={n.name}
              data-state={n.state}
              transform={`translate(${x.toFixed(1)},${y.toFixed(1)})`}
              onClick={() => onSelect && onSelect(n.name)}
            >
              <title>{`${n.name}: ${n.state}${n.attempts > 1 ? `, ${n.attempts} attempts` : ''}`}</title>
              <rect width={p.width} height={p.height} rx={n.kind === 'retry' ? 16 : 5} />
              <text x={p.width / 2} y={p.height / 2} dominant-baseline="central" text-anchor="middle">
                {label(n.name)}
              </text>
              {n.attempts > 1 && (
                <text class="attempts" x={p.width - 4} y={9} text-anchor="end">
                  ×{n.attempts}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </div>
  );
}

export function Legend() {
  return (
    <ul class="legend">
      {ATOM_STATES.map((s) => (
        <li key={s}>
          <span class={`swatch state-${s}`} />
          {s.toLowerCase().replace('_', ' ')}
        </li>
      ))}
    </ul>
  );
}
