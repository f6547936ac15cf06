using System.Buffers.Binary;
using System.Text;

namespace KvFusion.Cuda.Tests.Support;

/// <summary>
/// Builds a minimal ELF64 little-endian image: a null section, a string table and a symbol table, with the section
/// headers at the end of the file.
/// </summary>
internal static class ElfImage
{
    public const int SymbolTypeObject = 1;
    public const int SymbolTypeFunction = 2;

    /// <summary>Offset in the file of the symbol table's section header (for tests that damage it).</summary>
    public static int SymbolTableHeaderOffset(byte[] image) =>
        (int)BinaryPrimitives.ReadInt64LittleEndian(image.AsSpan(0x28)) + (2 * 64);

    /// <summary>An image whose symbol table holds <paramref name="symbols"/> (name and ELF symbol type).</summary>
    public static byte[] Build(params (string Name, int Type)[] symbols)
    {
        var strings = new List<byte> { 0 };
        var nameOffsets = new List<int>();
        foreach (var (name, _) in symbols)
        {
            nameOffsets.Add(strings.Count);
            strings.AddRange(Encoding.UTF8.GetBytes(name));
            strings.Add(0);
        }

        const int headerBytes = 64;
        var stringsOffset = headerBytes;
        var symbolsOffset = Align(stringsOffset + strings.Count, 8);
        var symbolsSize = 24 * (symbols.Length + 1);
        var sectionsOffset = Align(symbolsOffset + symbolsSize, 8);
        var image = new byte[sectionsOffset + (3 * 64)];

        image[0] = 0x7f;
        image[1] = (byte)'E';
        image[2] = (byte)'L';
        image[3] = (byte)'F';
        image[4] = 2; // ELFCLASS64
        image[5] = 1; // little-endian
        image[6] = 1; // EV_CURRENT
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x10), 2); // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x12), 190); // EM_CUDA
        BinaryPrimitives.WriteInt64LittleEndian(image.AsSpan(0x28), sectionsOffset);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x34), headerBytes);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x3A), 64);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x3C), 3);

        strings.CopyTo(image, stringsOffset);
        for (var i = 0; i < symbols.Length; i++)
        {
            var entry = image.AsSpan(symbolsOffset + (24 * (i + 1)), 24);
            BinaryPrimitives.WriteUInt32LittleEndian(entry, (uint)nameOffsets[i]);
            entry[4] = (byte)((1 << 4) | symbols[i].Type); // STB_GLOBAL
        }

        // Section 1: .strtab (SHT_STRTAB = 3); section 2: .symtab (SHT_SYMTAB = 2) linked to section 1.
        var strtab = image.AsSpan(sectionsOffset + 64, 64);
        BinaryPrimitives.WriteUInt32LittleEndian(strtab[4..], 3);
        BinaryPrimitives.WriteInt64LittleEndian(strtab[0x18..], stringsOffset);
        BinaryPrimitives.WriteInt64LittleEndian(strtab[0x20..], strings.Count);
        var symtab = image.AsSpan(sectionsOffset + 128, 64);
        BinaryPrimitives.WriteUInt32LittleEndian(symtab[4..], 2);
        BinaryPrimitives.WriteInt64LittleEndian(symtab[0x18..], symbolsOffset);
        BinaryPrimitives.WriteInt64LittleEndian(symtab[0x20..], symbolsSize);
        BinaryPrimitives.WriteUInt32LittleEndian(symtab[0x28..], 1);
        BinaryPrimitives.WriteInt64LittleEndian(symtab[0x38..], 24);
        return image;
    }

    private static int Align(int value, int alignment) => (value + alignment - 1) / alignment * alignment;
}
