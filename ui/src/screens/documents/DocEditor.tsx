import Collaboration from '@tiptap/extension-collaboration';
import CollaborationCursor from '@tiptap/extension-collaboration-cursor';
import { EditorContent, useEditor, type Editor } from '@tiptap/react';
import StarterKit from '@tiptap/starter-kit';
import { useEffect } from 'react';
import { useI18n } from '../../i18n';
import type { DocBinding } from './DocBinding';
import type { Me } from './DocumentsScreen';

const COLORS = ['#0F766E', '#B45309', '#7C3AED', '#BE123C', '#1D4ED8', '#15803D'];

/** A stable colour per user, so a co-editor keeps theirs across sessions. */
export function colorOf(userId: string): string {
  let h = 0;
  for (const ch of userId) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return COLORS[h % COLORS.length]!;
}

/** Tiptap bound to the binding's Y.Doc (Collaboration) and awareness (CollaborationCursor:
 * co-editors' carets and selections). Undo is Yjs's, so StarterKit's history is off. */
export function DocEditor({ binding, me, readOnly }: { binding: DocBinding; me: Me; readOnly: boolean }) {
  const editor = useEditor(
    {
      extensions: [
        StarterKit.configure({ history: false }),
        Collaboration.configure({ document: binding.doc }),
        // The binding is the "provider": the extension only needs its `awareness`.
        CollaborationCursor.configure({ provider: binding, user: { name: me.name, color: colorOf(me.id) } }),
      ],
      editable: !readOnly,
    },
    [binding],
  );

  useEffect(() => {
    editor?.setEditable(!readOnly);
  }, [editor, readOnly]);

  return (
    <div className="editor" data-testid="doc-editor">
      {editor && !readOnly && <Toolbar editor={editor} />}
      <EditorContent editor={editor} className="editor-content" />
    </div>
  );
}

function Toolbar({ editor }: { editor: Editor }) {
  const { t } = useI18n();
  const buttons = [
    { label: t('documents.bold'), text: 'B', active: editor.isActive('bold'), run: () => editor.chain().focus().toggleBold().run() },
    { label: t('documents.italic'), text: 'I', active: editor.isActive('italic'), run: () => editor.chain().focus().toggleItalic().run() },
    { label: t('documents.heading'), text: 'H', active: editor.isActive('heading', { level: 2 }), run: () => editor.chain().focus().toggleHeading({ level: 2 }).run() },
    { label: t('documents.bullets'), text: '•', active: editor.isActive('bulletList'), run: () => editor.chain().focus().toggleBulletList().run() },
    { label: t('documents.numbers'), text: '1.', active: editor.isActive('orderedList'), run: () => editor.chain().focus().toggleOrderedList().run() },
  ];
  return (
    <div className="toolbar" role="toolbar" aria-label={t('documents.toolbar')}>
      {buttons.map((b) => (
        <button key={b.label} type="button" aria-pressed={b.active} aria-label={b.label} title={b.label} onClick={b.run}>
          {b.text}
        </button>
      ))}
    </div>
  );
}
