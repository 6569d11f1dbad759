import { act, screen, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { FakeEngine, settle } from '../../test/fakeEngine';
import { renderIn } from '../../test/render';
import { DocBinding } from './DocBinding';
import { DocEditor } from './DocEditor';
import { SyncState } from './DocumentView';

const DOC = '0190f2f8-0000-7000-8000-000000000002';
const me = { id: '00000000-0000-7000-8000-0000000000aa', name: 'Layla' };

/** A paragraph in the shape Tiptap's Collaboration extension stores it. */
function paragraph(doc: Y.Doc, text: string) {
  const p = new Y.XmlElement('paragraph');
  p.insert(0, [new Y.XmlText(text)]);
  doc.getXmlFragment('default').insert(0, [p]);
}

describe('DocEditor', () => {
  it("shows the engine's content and a co-editor's edits as they arrive", async () => {
    const engine = new FakeEngine();
    paragraph(engine.doc, 'مسودة أولى');
    const mine = new DocBinding(DOC, engine.connect());
    const theirs = new DocBinding(DOC, engine.connect());
    await Promise.all([mine.open(), theirs.open()]);

    const { container } = renderIn(<DocEditor binding={mine} me={me} readOnly={false} />);
    await screen.findByText('مسودة أولى');
    expect(container.querySelector('.ProseMirror')?.getAttribute('contenteditable')).toBe('true');

    await act(async () => {
      paragraph(theirs.doc, 'from Omar');
      await settle();
    });
    await waitFor(() => expect(container.textContent).toContain('from Omar'));
    // The cursor extension announced the local user to co-editors.
    expect(theirs.awareness.getStates().get(mine.doc.clientID)?.user).toMatchObject({ name: 'Layla' });
  });

  it('is not editable for a read-only document and has no toolbar', async () => {
    const engine = new FakeEngine();
    const viewer = new DocBinding(DOC, engine.connect({ readOnly: true }));
    await viewer.open();
    const { container } = renderIn(<DocEditor binding={viewer} me={me} readOnly />);
    await waitFor(() => expect(container.querySelector('.ProseMirror')).not.toBeNull());
    expect(container.querySelector('.ProseMirror')?.getAttribute('contenteditable')).toBe('false');
    expect(screen.queryByRole('toolbar')).toBeNull();
  });
});

describe('SyncState', () => {
  const status = (pending: number, failed = 0) => ({ open: true, read_only: false, pending, failed });
  it('offline wins; then refused edits; then saved locally until nothing is pending', () => {
    const { rerender } = renderIn(<SyncState online={false} status={status(0)} />);
    expect(screen.getByRole('status').textContent).toBe('Offline — changes saved locally');
    rerender(<SyncState online status={undefined} />);
    expect(screen.getByRole('status').textContent).toBe('Saved locally');
    rerender(<SyncState online status={status(2)} />);
    expect(screen.getByRole('status').textContent).toBe('Saved locally');
    rerender(<SyncState online status={status(0, 1)} />);
    expect(screen.getByRole('status').textContent).toBe('Some edits were refused — see what was not sent');
    rerender(<SyncState online status={status(0)} />);
    expect(screen.getByRole('status').textContent).toBe('Synced');
  });
});
