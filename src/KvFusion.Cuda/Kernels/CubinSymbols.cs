using System.Buffers.Binary;
using System.Text;

namespace KvFusion.Cuda.Kernels;

/// <summary>Reads the function symbols of a cubin (an ELF64 image): the kernels a module really exports.</summary>
public static class CubinSymbols
{
    private const uint SectionSymbolTable = 2;
    private const int SymbolFunction = 2;

    /// <summary>The names of the function symbols of an ELF64 little-endian image.</summary>
    /// <exception cref="InvalidDataException">The image is not a well-formed ELF64 little-endian file.</exception>
    public static IReadOnlyList<string> Functions(ReadOnlySpan<byte> elf)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F' || elf[4] != 2 || elf[5] != 1)
        {
            throw new InvalidDataException("Not an ELF64 little-endian image.");
        }

        var sectionOffset = BinaryPrimitives.ReadInt64LittleEndian(elf[0x28..]);
        int entrySize = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3A..]);
        int count = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3C..]);
        if (entrySize < 64 || sectionOffset < 0 || sectionOffset + ((long)entrySize * count) > elf.Length)
        {
            throw new InvalidDataException("The ELF section table is out of bounds.");
        }

        var names = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var sh = elf.Slice((int)sectionOffset + (i * entrySize), entrySize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != SectionSymbolTable)
            {
                continue;
            }

            var offset = BinaryPrimitives.ReadInt64LittleEndian(sh[0x18..]);
            var size = BinaryPrimitives.ReadInt64LittleEndian(sh[0x20..]);
            var link = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[0x28..]);
            var symbolSize = BinaryPrimitives.ReadInt64LittleEndian(sh[0x38..]);
            if (link >= count || symbolSize < 24 || offset < 0 || offset + size > elf.Length)
            {
                throw new InvalidDataException("The ELF symbol table is out of bounds.");
            }

            var strings = elf.Slice((int)sectionOffset + (link * entrySize), entrySize);
            var stringsOffset = BinaryPrimitives.ReadInt64LittleEndian(strings[0x18..]);
            var stringsSize = BinaryPrimitives.ReadInt64LittleEndian(strings[0x20..]);
            if (stringsOffset < 0 || stringsOffset + stringsSize > elf.Length)
            {
                throw new InvalidDataException("The ELF string table is out of bounds.");
            }

            var table = elf.Slice((int)stringsOffset, (int)stringsSize);
            for (long s = 0; s + symbolSize <= size; s += symbolSize)
            {
                var symbol = elf.Slice((int)(offset + s), (int)symbolSize);
                if ((symbol[4] & 0xf) != SymbolFunction)
                {
                    continue;
                }

                var nameOffset = (int)BinaryPrimitives.ReadUInt32LittleEndian(symbol);
                if (nameOffset >= table.Length)
                {
                    throw new InvalidDataException("An ELF symbol name is out of bounds.");
                }

                var rest = table[nameOffset..];
                var end = rest.IndexOf((byte)0);
                names.Add(Encoding.UTF8.GetString(end < 0 ? rest : rest[..end]));
            }
        }

        return names;
    }
}
